"""Reading an import's CSV input: header, delimiter and encoding checks, fast row readers.

``open_csv`` refuses what cannot be read before any row is (empty file, wrong delimiter, unknown
encoding, not gzip); the readers name the line of any later decoding or CSV error; the byte
position read so far feeds the progress display. Errors are ``ImportFailed`` made by
``common.fail`` (file, line, reason, "Nothing was imported").
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.i18n import _
from app.services.reference.imports.common import check_file, fail

csv.field_size_limit(1 << 24)


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
    check_file(path)
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
            raise fail(path, _("cannot be read as gzip ({error}).").format(error=exc)) from None
        if not first.strip():
            raise fail(path, _("the file is empty (no header line)."), line=1)
        found = {d: first.count(d) for d in (";", ",", "\t", "|")}
        if delimiter is None:
            delimiter = _choose_delimiter(path, found, delimiters)
        header = next(csv.reader([first], delimiter=delimiter))
        header = [h.lstrip("\ufeff").strip() for h in header]
        hints = {_norm(h) for h in hint_columns}
        if len(header) == 1 and hints and _norm(header[0]) not in hints:
            other = max(found, key=lambda d: found[d])
            if found[other] > 0 and other != delimiter:
                raise fail(
                    path,
                    _(
                        "wrong delimiter: the header is one column when split on {used} but is "
                        "separated by {found}."
                    ).format(used=_show(delimiter), found=_show(other)),
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


def _choose_delimiter(path: Path, found: dict[str, int], delimiters: Sequence[str]) -> str:
    """The delimiter of a header that holds ``found`` of each: the most frequent one the format
    allows; the format's first when the header has none at all; refused when the header is
    separated by a delimiter the format does not allow."""
    allowed = [d for d in delimiters if found.get(d, 0) > 0]
    if not allowed:
        other = max(found, key=lambda d: found[d])
        if found[other] > 0:
            raise fail(
                path,
                _(
                    "wrong delimiter: the header is separated by {found}, this format "
                    "uses {allowed}. Convert the file or pass --delimiter '{other}' if "
                    "that is intended."
                ).format(
                    found=_show(other),
                    allowed=_(" or ").join(_show(d) for d in delimiters),
                    other=other,
                ),
                line=1,
            )
        return delimiters[0]
    return max(allowed, key=lambda d: found[d])


def _show(d: str) -> str:
    return {"\t": _("tabs"), ";": "';'", ",": "','", "|": "'|'"}.get(d, repr(d))


def _encoding_reason(exc: UnicodeDecodeError, encoding: str) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex() if exc.object else "?"
    return _(
        "unknown encoding: byte 0x{byte} is not valid {encoding}. Convert the file to UTF-8 "
        "(e.g. `iconv -f cp1252 -t utf-8`) or pass --encoding cp1252 (or latin-1) if you know "
        "its encoding."
    ).format(byte=bad, encoding=encoding.replace("-sig", ""))


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
        return fail(path, _("malformed CSV ({error}).").format(error=exc), line=line_num + 1)
    return fail(path, _("the file is truncated or corrupt ({error}).").format(error=exc))


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
                    raise csv.Error(_("unexpected end of file inside a quoted value"))
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
                raise fail(
                    self._path,
                    _("malformed CSV ({error}).").format(error=exc),
                    line=self.line_num + 1,
                ) from None
            except (EOFError, OSError) as exc:
                raise fail(
                    self._path, _("the file is truncated or corrupt ({error}).").format(error=exc)
                ) from None
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
        wanted = ", ".join(
            _("{name} (one of: {names})").format(name=n, names="/".join(spec[n])) for n in missing
        )
        shown = ", ".join(header[:12]) + (", …" if len(header) > 12 else "")
        raise fail(
            path,
            _("missing required column(s): {wanted}. The header has: {shown}.").format(
                wanted=wanted, shown=shown
            ),
            line=line,
        )
    return found
