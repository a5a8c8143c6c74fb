"""What every import shares: the report, rejected rows, CSV reading, progress, the connection.

An import runs in one transaction on one raw asyncpg connection (as the schema owner) and streams
its rows with COPY. Rows are either loaded, *skipped* (expected, e.g. a BAL named place without a
number), or *rejected* (an error in that row). Skipped and rejected rows go to a report CSV written
next to the input (``<input>.rejects.csv``: line, column, outcome, reason). By default a single
rejected row refuses the whole import (``max_rejects=0``): nothing is stored, the message names the
file, line and reason. File-level problems (empty file, wrong delimiter, missing column, unknown
encoding, duplicated ids, unexpected CRS) always refuse the import.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from app.csvsafe import SafeWriter
from app.errors import ImportFailed

csv.field_size_limit(1 << 24)

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
        lines = [
            f"{self.kind}: {self.path.name}: {self.rows_read:,} rows read, "
            f"{self.rows_loaded:,} loaded, {self.rows_skipped:,} skipped, "
            f"{self.rows_rejected:,} rejected"
            + (f", {self.rows_filtered:,} filtered out" if self.rows_filtered else "")
            + f" in {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s).",
        ]
        lines += [f"  {n}" for n in self.notes]
        if self.report_path and (self.rows_skipped or self.rows_rejected):
            lines.append(f"  Skipped/rejected rows are listed in {self.report_path}")
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
                f"line {ln}, column {col or '-'}: {why}" for ln, col, why in self.first
            )
            raise ImportFailed(
                f"{self.path}: {self.rejected:,} row(s) rejected ({listed}"
                + ("; …" if self.rejected > len(self.first) else "")
                + f"). Nothing was imported. All rejected rows are listed in {self.report_path}; "
                "fix them, or pass --max-rejects N to load the other rows anyway.",
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
    where = f"{path}" + (f", line {line}" if line else "")
    return ImportFailed(
        f"{where}: {reason} Nothing was imported.",
        extra={"file": str(path), "line": line, **extra},
    )


# ---------------------------------------------------------------- CSV input


class _Counting(io.RawIOBase):
    """Wraps a binary file to count the compressed/raw bytes consumed (for progress)."""

    def __init__(self, raw: io.BufferedReader):
        self.raw = raw
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self.raw.readinto(b)
        self.pos += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


@dataclass
class CsvInput:
    """An open CSV file: header, reader, and byte position for progress."""

    path: Path
    header: list[str]
    reader: Any
    delimiter: str
    size: int
    _counter: _Counting
    _text: io.TextIOWrapper

    @property
    def position(self) -> int:
        """Bytes of the file consumed so far."""
        return self._counter.pos

    def split_reader(self) -> SplitReader:
        """A faster reader for the rows after the header (plain ``str.split`` when a line has
        no quote, the csv module otherwise)."""
        return SplitReader(self._text, self.delimiter, self.path, self._text.encoding)

    def blocks(self, size: int = 1 << 20) -> Iterator[str]:
        """The text after the header in blocks of about ``size`` characters, each ending at a
        line break (the last one may not); decoding errors propagate (see ``explain_error``)."""
        return _cut(self._text.read, size, "\n", "\r")

    @property
    def is_utf8(self) -> bool:
        """Whether the file is read as UTF-8 (its bytes can then be parsed without decoding)."""
        return codecs.lookup(self._text.encoding).name in ("utf-8", "utf-8-sig")

    def byte_blocks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Like ``blocks`` but the raw bytes (UTF-8 files: see ``is_utf8``; not decoded, hence
        not checked), from a second reader of the file, which progress then follows."""
        raw = open(self.path, "rb")  # noqa: SIM115
        counter = _Counting(raw)
        stream: Any = io.BufferedReader(counter, buffer_size=1 << 20)
        if self.path.suffix == ".gz":
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        self._counter = counter
        try:
            head = stream.readline()  # the header, as the text reader cut it: at \n, \r\n or \r
            cr = head.find(b"\r")
            first = head[cr + 1 :] if cr >= 0 and head[cr + 1 : cr + 2] != b"\n" else b""
            yield from _cut(stream.read, size, b"\n", b"\r", first)
        finally:
            stream.close()
            raw.close()

    def explain_error(self, exc: Exception, line_num: int) -> Exception:
        """An ImportFailed naming the line for a decoding/CSV/IO error met after ``line_num``."""
        return _explain(self.path, self._text.encoding, line_num, exc)

    def close(self) -> None:
        """Close the file."""
        self._text.close()


def _cut(read: Callable[[int], Any], size: int, lf: Any, cr: Any, carry: Any = None) -> Iterator:
    """Blocks of ``read(size)`` cut after their last line break (str or bytes)."""
    carry = carry if carry is not None else lf[:0]
    while True:
        chunk = read(size)
        if not chunk:
            if carry:
                yield carry
            return
        chunk = carry + chunk
        cut = chunk.rfind(lf) + 1
        if cut == 0:  # no line feed: old Mac line ends, or one very long line
            cut = chunk.rfind(cr, 0, len(chunk) - 1) + 1
        if cut == 0:
            carry = chunk
            continue
        carry = chunk[cut:]
        yield chunk[:cut]


def _norm(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


@contextmanager
def open_csv(
    path: Path,
    *,
    delimiters: Sequence[str],
    encoding: str = "utf-8-sig",
    delimiter: str | None = None,
    hint_columns: Iterable[str] = (),
) -> Iterator[CsvInput]:
    """Open a CSV (or .csv.gz) and read its header; refuse empty files and foreign delimiters.

    ``delimiters`` are those the format allows (the first one found in the header wins);
    ``delimiter`` forces one.
    """
    if not path.exists():
        raise fail(path, "no such file.")
    if path.stat().st_size == 0:
        raise fail(path, "the file is empty (0 bytes).")
    raw = open(path, "rb")  # noqa: SIM115
    counter = _Counting(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    stream: Any = buffered
    if path.suffix == ".gz":
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", errors="strict")
    try:
        try:
            first = text.readline()
        except UnicodeDecodeError as exc:
            line = first_undecodable_line(path, encoding) or 1
            raise fail(path, _encoding_reason(exc, encoding), line=line) from None
        except (gzip.BadGzipFile, EOFError, OSError) as exc:
            raise fail(path, f"cannot be read as gzip ({exc}).") from None
        if not first.strip():
            raise fail(path, "the file is empty (no header line).", line=1)
        found = {d: first.count(d) for d in (";", ",", "\t", "|")}
        if delimiter is None:
            allowed = [d for d in delimiters if found.get(d, 0) > 0]
            if not allowed:
                other = max(found, key=lambda d: found[d])
                if found[other] > 0:
                    raise fail(
                        path,
                        f"wrong delimiter: the header is separated by {_show(other)}, "
                        f"this format uses {' or '.join(_show(d) for d in delimiters)}. "
                        f"Convert the file or pass --delimiter '{other}' if that is intended.",
                        line=1,
                    )
                delimiter = delimiters[0]
            else:
                delimiter = max(allowed, key=lambda d: found[d])
        header = next(csv.reader([first], delimiter=delimiter))
        header = [h.lstrip("\ufeff").strip() for h in header]
        hints = {_norm(h) for h in hint_columns}
        if len(header) == 1 and hints and _norm(header[0]) not in hints:
            other = max(found, key=lambda d: found[d])
            if found[other] > 0 and other != delimiter:
                raise fail(
                    path,
                    f"wrong delimiter: the header is one column when split on {_show(delimiter)}"
                    f" but is separated by {_show(other)}.",
                    line=1,
                )
        reader = csv.reader(text, delimiter=delimiter)
        reader_line_offset = 1  # the header was read outside the reader
        inp = CsvInput(
            path,
            header,
            _LineReader(reader, reader_line_offset, path, encoding),
            delimiter,
            path.stat().st_size,
            counter,
            text,
        )
        yield inp
    finally:
        text.close()


def _show(d: str) -> str:
    return {"\t": "tabs", ";": "';'", ",": "','", "|": "'|'"}.get(d, repr(d))


def _encoding_reason(exc: UnicodeDecodeError, encoding: str) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex() if exc.object else "?"
    return (
        f"unknown encoding: byte 0x{bad} is not valid {encoding.replace('-sig', '')}. "
        "Convert the file to UTF-8 (e.g. `iconv -f cp1252 -t utf-8`) or pass --encoding cp1252 "
        "(or latin-1) if you know its encoding."
    )


def first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The first line that does not decode (a second pass, only after a decoding error)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for n, raw in enumerate(fh, start=1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError:
                    return n
    except OSError:
        return None
    return None


def _explain(path: Path, encoding: str, line_num: int, exc: Exception) -> Exception:
    if isinstance(exc, UnicodeDecodeError):
        line = first_undecodable_line(path, encoding) or line_num + 1
        return fail(path, _encoding_reason(exc, encoding), line=line)
    if isinstance(exc, csv.Error):
        return fail(path, f"malformed CSV ({exc}).", line=line_num + 1)
    return fail(path, f"the file is truncated or corrupt ({exc}).")


class SplitReader:
    """Rows of a delimited text stream; ``line_num`` is the line where the last row started."""

    def __init__(
        self, text: Any, delimiter: str, path: Path, encoding: str, line_num: int = 1
    ) -> None:
        self._text = text
        self._delimiter = delimiter
        self._path = path
        self._encoding = encoding
        self.line_num = line_num  # 1: the header

    def __iter__(self) -> Iterator[list[str]]:
        delim = self._delimiter
        text = self._text
        n = self.line_num
        for line in text:
            n += 1
            self.line_num = n
            if '"' not in line:
                yield line.rstrip("\r\n").split(delim)
                continue
            buf = line
            while buf.count('"') % 2:  # a quoted value runs over the next line
                more = next(text, None)
                if more is None:
                    raise csv.Error("unexpected end of file inside a quoted value")
                buf += more
                n += 1
            yield next(csv.reader(io.StringIO(buf, newline=""), delimiter=delim))

    def explain(self, exc: Exception) -> Exception:
        """An ImportFailed naming the line for a decoding/CSV/IO error raised while iterating."""
        return _explain(self._path, self._encoding, self.line_num, exc)


class _LineReader:
    """csv.reader whose line numbers count the header, and whose decode errors name the line."""

    def __init__(self, reader: Any, offset: int, path: Path, encoding: str):
        self._reader = reader
        self._offset = offset
        self._path = path
        self._encoding = encoding

    @property
    def line_num(self) -> int:
        """Physical line number (1 = header) of the last row read."""
        return self._reader.line_num + self._offset

    @property
    def raw(self) -> Any:
        """The underlying csv.reader (hot loops); pass its errors to ``explain``."""
        return self._reader

    def explain(self, exc: Exception) -> Exception:
        """An ImportFailed naming the line for a decoding/CSV/IO error raised by ``raw``."""
        return _explain(self._path, self._encoding, self.line_num, exc)

    def __iter__(self) -> Iterator[list[str]]:
        it = iter(self._reader)
        while True:
            try:
                row = next(it)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                line = first_undecodable_line(self._path, self._encoding) or self.line_num + 1
                raise fail(self._path, _encoding_reason(exc, self._encoding), line=line) from None
            except csv.Error as exc:
                raise fail(self._path, f"malformed CSV ({exc}).", line=self.line_num + 1) from None
            except (EOFError, OSError) as exc:
                raise fail(self._path, f"the file is truncated or corrupt ({exc}).") from None
            yield row


def find_columns(
    path: Path,
    header: Sequence[str],
    spec: dict[str, Sequence[str]],
    required: Iterable[str],
    *,
    line: int | None = 1,
) -> dict[str, int]:
    """Map logical names to column indexes, matching aliases case-insensitively.

    Raises ImportFailed naming every missing required column.
    """
    index = {}
    for i, h in enumerate(header):
        index.setdefault(_norm(h), i)
    found: dict[str, int] = {}
    for name, aliases in spec.items():
        for alias in aliases:
            if _norm(alias) in index:
                found[name] = index[_norm(alias)]
                break
    missing = [n for n in required if n not in found]
    if missing:
        wanted = ", ".join(f"{n} (one of: {'/'.join(spec[n])})" for n in missing)
        shown = ", ".join(header[:12]) + (", …" if len(header) > 12 else "")
        raise fail(
            path,
            f"missing required column(s): {wanted}. The header has: {shown}.",
            line=line,
        )
    return found


# ---------------------------------------------------------------- database


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN from a SQLAlchemy URL (drops the +driver part)."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep else url


@asynccontextmanager
async def connect(owner_url: str):
    """A raw asyncpg connection as the schema owner."""
    from app.dburl import CLIENT_CHECK_MS

    conn = await asyncpg.connect(
        asyncpg_dsn(owner_url),
        server_settings={
            "application_name": "porte-import",
            "jit": "off",
            "client_connection_check_interval": CLIENT_CHECK_MS,
        },
    )
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


def translate_db_error(path: Path, exc: asyncpg.PostgresError) -> ImportFailed:
    """A database error during an import, told to a person."""
    detail = getattr(exc, "detail", None) or ""
    if isinstance(exc, asyncpg.DiskFullError):
        from app.dbfaults import disk_full_advice
        from app.i18n import _

        return ImportFailed(
            _("{file}: the import stopped: {error}.").format(
                file=path, error=str(exc).splitlines()[0].rstrip(".")
            )
            + " "
            + disk_full_advice(),
            extra={"file": str(path), "line": None, "reason": "disk_full"},
        )
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        table = getattr(exc, "table_name", None) or "campaign data"
        return fail(
            path,
            f"rows this import would remove or replace are still used by {table} ({detail}). "
            "Campaign data (turfs, assignments, visits, flags) keeps the doors and districts it "
            "refers to: keep those rows in the file, or end what uses them first.",
        )
    return fail(path, f"the database refused the data: {exc}. {detail}".strip())


# ---------------------------------------------------------------- progress


class Progress:
    """A rich progress bar over the bytes of the input (no-op when quiet)."""

    def __init__(self, description: str, total: int | None, quiet: bool):
        self.quiet = quiet or not _interactive_or_forced()
        self._progress = None
        self._task = None
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:>12,} rows"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, rows=0)

    def update(self, completed: int, rows: int) -> None:
        """Move the bar to ``completed`` bytes, showing ``rows``."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, rows=rows)

    def close(self, completed: int | None = None) -> None:
        """Finish the bar."""
        if self._progress is not None:
            if completed is not None:
                self._progress.update(self._task, completed=completed)
            self._progress.stop()


def _interactive_or_forced() -> bool:
    return sys.stderr.isatty() or os.environ.get("PORTE_PROGRESS") == "1"


Fault = Callable[[int], None] | None
"""Test hook: called with the number of rows sent so far after each chunk (may raise)."""


def now() -> float:
    """Monotonic clock, seconds."""
    return time.perf_counter()
