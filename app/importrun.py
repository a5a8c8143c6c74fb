"""The skeleton every import shares: ``ImportRun``.

Every importer runs as one ``ImportRun``: the reference data of
``app/services/reference/imports`` (tiles, addresses, districts, results; subclass
``ReferenceImport`` there, which adds the rejected-rows report, the owner's transaction and the
``import_run`` record) and the consented supporters of
``app/services/people/supporters/imports.py`` (subclass ``SupporterImport``, in its caller's
transaction, audited). What they share, said once here:

- timing (``started_at``, ``seconds``), the kind of import and the file it reads;
- progress goes to a callback (``on_progress``, an ``ImportProgress`` each time): services never
  print; the command line turns the events into a bar or lines (``app/commands/progress.py``);
- a database fault met mid-import is told in the user's words: a full disk
  (``disk_full_failure``: what to free, nothing stored) and a lost connection
  (``lost_connection``: run the same command again); the transaction was never committed, so
  nothing of the run is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.dbfaults import disk_full_advice, is_disk_full
from app.errors import ImportFailed
from app.i18n import _


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: ``done`` of ``total`` (bytes or features; None: unknown), ``rows``
    read so far; ``finished`` once (the display then closes; None: as last shown)."""

    run: ImportRun
    done: int | None
    total: int | None
    rows: int | None
    finished: bool = False

    @property
    def description(self) -> str:
        """``<kind> <file name>``."""
        return f"{self.run.kind} {self.run.path.name}"


OnProgress = Callable[[ImportProgress], None]


class ImportRun:
    """One import of one file: what it is, since when, and where its progress goes."""

    def __init__(self, kind: str, path: Path | str, *, on_progress: OnProgress | None = None):
        self.kind = kind
        self.path = Path(path)
        self.started_at = time.time()  # wall clock, for the run's record
        self._t0 = time.perf_counter()
        self._on_progress = on_progress
        self.total: int | None = None  # what ``done`` counts up to, when known
        self._finished = False

    @property
    def seconds(self) -> float:
        """Wall time since the run started."""
        return time.perf_counter() - self._t0

    def start_progress(self, total: int | None) -> None:
        """Tell the display the run starts reading ``total`` bytes or features (None: unknown)."""
        self.total = total
        self.progress(0, 0)

    def progress(self, done: int, rows: int) -> None:
        """Tell the display how far the run is."""
        if self._on_progress is not None and not self._finished:
            self._on_progress(ImportProgress(self, done, self.total, rows))

    def progress_finished(self, done: int | None = None, rows: int | None = None) -> None:
        """Tell the display the reading is over (``done`` None: at ``total`` when known); once,
        later calls do nothing."""
        if self._on_progress is not None and not self._finished:
            final = self.total if done is None else done
            self._on_progress(ImportProgress(self, final, self.total, rows, finished=True))
        self._finished = True

    def disk_full_failure(self, exc: BaseException) -> ImportFailed | None:
        """The database's disk filled up during the run: what happened and what to do."""
        if not is_disk_full(exc):
            return None
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0].rstrip(".")
        return ImportFailed(
            _("{file}: the import stopped: {error}.").format(file=self.path, error=first)
            + " "
            + disk_full_advice(),
            extra={"file": str(self.path), "line": None, "reason": "disk_full"},
        )


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` means the database went away mid-import (restarted, connection cut):
    the transaction was never committed, so nothing of the run is stored."""
    import asyncpg

    return isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)
