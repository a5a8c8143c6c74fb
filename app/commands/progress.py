"""How the command line shows an import's progress (``ImportProgress`` events, app/importrun.py).

Services report progress through a callback and never print; the bar is drawn here, on stderr,
when stderr is a terminal (or ``PORTE_PROGRESS=1``, ``0`` to hide it), so that piped output and
``--json`` stay clean.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from app.i18n import _
from app.importrun import ImportProgress


def _interactive_or_forced() -> bool:
    return sys.stderr.isatty() or os.environ.get("PORTE_PROGRESS") == "1"


class ProgressBar:
    """A rich bar per import (bytes or features of the input, rows read), one after the other."""

    def __init__(self, quiet: bool = False):
        self.enabled = not quiet and _interactive_or_forced()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, event: ImportProgress) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if event.finished:
                return
            self._start(event.description, event.total)
        fields: dict[str, Any] = {}
        if event.done is not None:
            fields["completed"] = event.done
        if event.rows is not None:
            fields["rows"] = event.rows
        self._bar.update(self._task, **fields)
        if event.finished:
            self._bar.stop()
            self._bar = None

    def _start(self, description: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:>12,} " + _("rows")),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, rows=0)


def progress_bar(quiet: bool) -> ProgressBar | None:
    """The ``on_progress`` callback of an import command (None when quiet or not shown)."""
    bar = ProgressBar(quiet)
    return bar if bar.enabled else None
