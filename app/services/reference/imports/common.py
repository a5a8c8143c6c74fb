"""What every reference import shares: the ``ReferenceImport`` run, its report and rejected rows.

An import runs in one transaction on one raw asyncpg connection (as the schema owner) and streams
its rows with COPY. Rows are either loaded, *skipped* (expected, e.g. a BAL named place without a
number), or *rejected* (an error in that row). Skipped and rejected rows go to a report CSV written
next to the input (``<input>.rejects.csv``: line, column, outcome, reason). By default a single
rejected row refuses the whole import (``max_rejects=0``): nothing is stored, the message names the
file, line and reason. File-level problems (empty file, wrong delimiter, missing column, unknown
encoding, duplicated ids, unexpected CRS) always refuse the import.

Each importer (tiles, addresses, districts, results) is written as::

    with ReferenceImport("tiles", path, report_path=..., max_rejects=..., on_progress=...) as run:
        ...  # open and check the file; run.start_progress(size)
        async with run.transaction(owner_url) as conn:
            ...  # COPY; run.log.reject(line, column, reason) for a bad row; run.progress(...)
            run.check_rejects()
            run.counted(read=..., loaded=...)
            await run.record(conn, source="insee")
    return run.report

Reading CSV input is in ``csvinput``; the progress display is the command line's
(app/commands/progress.py).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import asyncpg

from app.csvsafe import SafeWriter
from app.dburl import asyncpg_dsn, connect_long_job  # noqa: F401 (asyncpg_dsn: tests use it here)
from app.errors import ImportFailed
from app.i18n import _, number
from app.importrun import ImportRun, OnProgress

REPORT_SUFFIX = ".rejects.csv"
MAX_LISTED = 5  # rejected rows quoted in an error message


@dataclass
class ImportReport:
    """The outcome of one import: counts, timing, notes and where the rejected rows went."""

    kind: str
    path: Path
    source_file: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    rows_filtered: int = 0
    seconds: float = 0.0
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return {
            "kind": self.kind,
            "file": str(self.path),
            "source_file": self.source_file,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_skipped": self.rows_skipped,
            "rows_rejected": self.rows_rejected,
            "rows_filtered": self.rows_filtered,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "report": str(self.report_path) if self.report_path else None,
            "notes": list(self.notes),
            **self.details,
        }

    def summary(self) -> str:
        """A few lines for people."""
        counts = _(
            "{kind}: {file}: {read} rows read, {loaded} loaded, {skipped} skipped, "
            "{rejected} rejected"
        ).format(
            kind=self.kind,
            file=self.path.name,
            read=number(self.rows_read),
            loaded=number(self.rows_loaded),
            skipped=number(self.rows_skipped),
            rejected=number(self.rows_rejected),
        )
        if self.rows_filtered:
            counts += _(", {n} filtered out").format(n=number(self.rows_filtered))
        counts += _(" in {seconds} s ({rate} rows/s).").format(
            seconds=number(self.seconds, 2), rate=number(self.rows_per_second)
        )
        lines = [counts]
        lines += [f"  {n}" for n in self.notes]
        if self.report_path and (self.rows_skipped or self.rows_rejected):
            lines.append(
                _("  Skipped/rejected rows are listed in {path}").format(path=self.report_path)
            )
        return "\n".join(lines)


class RejectLog:
    """Collects skipped/rejected rows and writes them to the report CSV (streamed)."""

    def __init__(self, path: Path, report_path: Path | None):
        self.path = path
        self.report_path = report_path or default_report_path(path)
        self._fh: io.TextIOBase | None = None
        self._writer: Any = None
        self.rejected = 0
        self.skipped = 0
        self.first: list[tuple[int, str, str]] = []

    def _write(self, line: int, column: str, outcome: str, reason: str) -> None:
        if self._writer is None:
            self.report_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.report_path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = SafeWriter(self._fh)  # reasons may quote the file's text
            self._writer.writerow(["line", "column", "outcome", "reason"])
        self._writer.writerow([line, column, outcome, reason])

    def reject(self, line: int, column: str, reason: str) -> None:
        """Record a row refused because of an error."""
        self.rejected += 1
        if len(self.first) < MAX_LISTED:
            self.first.append((line, column, reason))
        self._write(line, column, "rejected", reason)

    def skip(self, line: int, column: str, reason: str) -> None:
        """Record a row left out on purpose (not an error)."""
        self.skipped += 1
        self._write(line, column, "skipped", reason)

    def note(self, line: int, column: str, outcome: str, reason: str) -> None:
        """Record something done to a loaded row (e.g. geometry repaired, station unmatched)."""
        self._write(line, column, outcome, reason)

    def close(self) -> Path | None:
        """Close the report; return its path, or None (and remove a stale one) when empty."""
        if self._fh is not None:
            self._fh.close()
            return self.report_path
        with suppress(FileNotFoundError, PermissionError, OSError):
            self.report_path.unlink()
        return None

    def check(self, max_rejects: int) -> None:
        """Refuse the import when there are more rejected rows than allowed."""
        if self.rejected > max_rejects:
            listed = "; ".join(
                _("line {line}, column {column}: {reason}").format(
                    line=ln, column=col or "-", reason=why
                )
                for ln, col, why in self.first
            ) + ("; …" if self.rejected > len(self.first) else "")
            raise ImportFailed(
                _(
                    "{file}: {n} row(s) rejected ({listed}). Nothing was imported. All rejected "
                    "rows are listed in {report}; fix them, or pass --max-rejects N to load the "
                    "other rows anyway."
                ).format(
                    file=self.path,
                    n=number(self.rejected),
                    listed=listed,
                    report=self.report_path,
                ),
                extra={"file": str(self.path), "line": self.first[0][0] if self.first else None},
            )


def default_report_path(path: Path) -> Path:
    """``<input>.rejects.csv`` next to the input, or in the current directory if not writable."""
    candidate = path.with_name(path.name + REPORT_SUFFIX)
    if os.access(path.parent, os.W_OK):
        return candidate
    return Path.cwd() / candidate.name


def fail(path: Path, reason: str, line: int | None = None, **extra: Any) -> ImportFailed:
    """An ImportFailed naming the file (and line) with what to do next."""
    where = f"{path}" + (_(", line {line}").format(line=line) if line else "")
    return ImportFailed(
        _("{where}: {reason} Nothing was imported.").format(where=where, reason=reason),
        extra={"file": str(path), "line": line, **extra},
    )


def check_file(path: Path) -> None:
    """Refuse a file that is missing or empty (0 bytes)."""
    if not path.exists():
        raise fail(path, _("no such file."))
    if path.stat().st_size == 0:
        raise fail(path, _("the file is empty (0 bytes)."))


def pick_field(
    columns: list[str], wanted: str | None, candidates: list[str], path: Path, what: str
) -> str | None:
    """The file's field for ``what`` (a name marked with ``N_``): ``wanted`` when given (any
    case; refused when the file has no such field), else the first of ``candidates`` the file
    has (None when it has none)."""
    lower = {c.lower(): c for c in columns}
    if wanted:
        if wanted.lower() not in lower:
            raise fail(
                path,
                _("the {what} field {wanted!r} is not in the file (fields: {fields}).").format(
                    what=_(what), wanted=wanted, fields=", ".join(columns)
                ),
            )
        return lower[wanted.lower()]
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


# ---------------------------------------------------------------- database


@asynccontextmanager
async def connect(owner_url: str):
    """A raw asyncpg connection as the schema owner."""
    conn = await connect_long_job(owner_url, "porte-import")
    try:
        yield conn
    finally:
        await conn.close()


async def record_run(
    conn: asyncpg.Connection, report: ImportReport, *, source: str | None, started: float
) -> None:
    """Log a successful import in ``import_run`` (inside the import's transaction)."""
    import json

    await conn.execute(
        "INSERT INTO import_run (kind, source_file, source, started_at, rows_read, rows_loaded,"
        " rows_skipped, rows_rejected, details)"
        " VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7, $8, $9::jsonb)",
        report.kind,
        report.source_file,
        source,
        started,
        report.rows_read,
        report.rows_loaded,
        report.rows_skipped,
        report.rows_rejected,
        json.dumps({"notes": report.notes, **report.details}),
    )


class RunOptions(TypedDict, total=False):
    """What every reference importer takes for its run and hands to ``ReferenceImport``:
    ``max_rejects`` (rows that may be rejected and the good ones still loaded; default 0),
    ``report_path`` (where the rejected rows go; default ``<file>.rejects.csv``) and
    ``on_progress`` (the commands' progress display)."""

    max_rejects: int
    report_path: Path | None
    on_progress: OnProgress | None


class ReferenceImport(ImportRun):
    """One reference import: ``ImportRun`` plus the report, the rejected rows, the owner's
    transaction and the run's record in ``import_run``.

    Used as a context manager: leaving it closes the progress display and the rejected-rows
    report (removed when empty) and sets the report's timing, whether the import succeeded or not.
    """

    def __init__(
        self,
        kind: str,
        path: Path | str,
        *,
        report_path: Path | None = None,
        max_rejects: int = 0,
        on_progress: OnProgress | None = None,
    ):
        super().__init__(kind, path, on_progress=on_progress)
        self.report = ImportReport(kind, self.path, self.path.name)
        self.log = RejectLog(self.path, report_path)
        self.max_rejects = max_rejects

    def __enter__(self) -> ReferenceImport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress_finished()
        self.report.report_path = self.log.close()
        self.report.seconds = self.seconds

    def fail(self, reason: str, line: int | None = None, **extra: Any) -> ImportFailed:
        """An ImportFailed naming this run's file (and line)."""
        return fail(self.path, reason, line, **extra)

    @asynccontextmanager
    async def transaction(
        self, owner_url: str, *, explain: Explain | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """The owner's connection in one transaction: committed when the block ends, rolled back
        on any error (nothing stored). A database error is told to a person: by ``explain``
        first (the importer's own cases; None: not one of them), else by ``db_failure``."""
        try:
            async with connect(owner_url) as conn:
                try:
                    async with conn.transaction():
                        yield conn
                except asyncpg.PostgresError as exc:
                    told = await explain(conn, exc) if explain is not None else None
                    raise (told or self.db_failure(exc)) from None
        except asyncpg.PostgresError as exc:  # connecting, or closing
            raise self.db_failure(exc) from None

    def check_rejects(self) -> None:
        """Refuse the import when more rows were rejected than ``max_rejects``."""
        self.log.check(self.max_rejects)

    def counted(self, *, loaded: int, read: int | None = None) -> None:
        """Put the row counts in the report (skipped and rejected from the log)."""
        if read is not None:
            self.report.rows_read = read
        self.report.rows_loaded = loaded
        self.report.rows_skipped, self.report.rows_rejected = self.log.skipped, self.log.rejected

    async def record(self, conn: asyncpg.Connection, *, source: str | None) -> None:
        """Log this import in ``import_run``, inside its transaction (so only if it commits)."""
        self.report.seconds = self.seconds
        await record_run(conn, self.report, source=source, started=self.started_at)

    def db_failure(self, exc: asyncpg.PostgresError) -> ImportFailed:
        """A database error during this import, told to a person."""
        return translate_db_error(self.path, exc)


Explain = Callable[[asyncpg.Connection, asyncpg.PostgresError], Awaitable[ImportFailed | None]]


def translate_db_error(path: Path, exc: asyncpg.PostgresError) -> ImportFailed:
    """A database error during an import, told to a person."""
    detail = getattr(exc, "detail", None) or ""
    full = ImportRun("", path).disk_full_failure(exc)
    if full is not None:
        return full
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        table = getattr(exc, "table_name", None) or _("campaign data")
        return fail(
            path,
            _(
                "rows this import would remove or replace are still used by {table} ({detail}). "
                "Campaign data (turfs, assignments, visits, flags) keeps the doors and districts "
                "it refers to: keep those rows in the file, or end what uses them first."
            ).format(table=table, detail=detail),
        )
    return fail(
        path,
        (_("the database refused the data: {error}.").format(error=exc) + f" {detail}").strip(),
    )


Fault = Callable[[int], None] | None
"""Test hook: called with the number of rows sent so far after each chunk (may raise)."""


def now() -> float:
    """Monotonic clock, seconds."""
    return time.perf_counter()
