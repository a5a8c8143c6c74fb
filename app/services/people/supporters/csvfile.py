"""Reading a supporter CSV: an upload within limits (``read_csv``), or a big file on disk chunk
by chunk (``CsvStream``); the encoding (UTF-8, UTF-16, Windows-1252) and delimiter (``;``,
``,``, tab) are found, repeated column names made unique.

Limits of the HTTP upload: ``MAX_ROWS`` rows and ``MAX_BYTES`` bytes. Bigger files are refused up
front (413) with the limit and what to do: use the command line, or split the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.errors import InvalidInput, PorteError
from app.i18n import N_, _, number

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
CHUNK_ROWS = 5_000
CLI_COMMAND = "porte supporters import FILE --campaign <id or name> --admin <e-mail>"

Row = tuple[int, dict[str, str]]  # (line number in the file, the row by column name)


class TooLarge(PorteError):
    """The upload is over the size or row limit (413)."""

    status = 413
    title = N_("File too large")


def too_large(what: str) -> TooLarge:
    """The 413 error for an upload over a limit."""
    return TooLarge(
        _(
            "{what}. One upload holds at most {rows} rows and {mb} MB. Split the file into parts "
            "under these limits (keep the header line in each part) and import them one after "
            "the other (with valid_rows_only=false each part is all or nothing); or, for a big "
            "member file, the campaign admin imports it whole on the server, streamed in one "
            "transaction with no size limit: `{command}`."
        ).format(what=what, rows=number(MAX_ROWS), mb=MAX_BYTES // 2**20, command=CLI_COMMAND),
        extra={"max_rows": MAX_ROWS, "max_bytes": MAX_BYTES, "command": CLI_COMMAND},
    )


# ---------------------------------------------------------------- reading CSV
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": N_("UTF-8 with a byte-order mark"),
    "utf-16": N_("UTF-16 (with its byte-order mark)"),
    "cp1252": "Windows-1252 (Latin-1)",
    "latin-1": "ISO-8859-1 (Latin-1)",
}


@dataclass
class CsvInfo:
    """How a CSV was read: its header (unique names), as written, repeated names, encoding."""

    header: list[str]
    base: list[str]  # the names as written in the file (repeated names kept)
    duplicates: dict[str, int]  # a name written more than once -> how many times
    encoding: str
    delimiter: str

    def describe(self) -> dict[str, Any]:
        """For the report."""
        names = {",": "comma", ";": "semicolon", "\t": "tab"}
        return {
            "encoding": _(ENCODING_LABELS.get(self.encoding, self.encoding)),
            "delimiter": names.get(self.delimiter, self.delimiter),
            "duplicated_columns": self.duplicates,
        }


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _unique_header(names: list[str]) -> tuple[list[str], list[str], dict[str, int]]:
    """Unique column names: a repeated name gets ' (2)', ' (3)'...; empty names are numbered."""
    base = [n.strip() or f"(column {i + 1})" for i, n in enumerate(names)]
    if not any(n.strip() for n in names):
        raise InvalidInput(_("is empty: expected a header line and rows"), field="file")
    seen: Counter = Counter()
    unique = []
    for n in base:
        seen[n] += 1
        unique.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return unique, base, {n: c for n, c in seen.items() if c > 1}


def _decode(data: bytes) -> tuple[str, str]:
    """Text of an upload: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    try:
        if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return data.decode("utf-16"), "utf-16"
        if data.startswith(codecs.BOM_UTF8):
            return data[3:].decode("utf-8"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            _(
                "starts with a byte-order mark but is not valid {encoding} (byte {at}); save it "
                "again as CSV UTF-8"
            ).format(encoding=exc.encoding.upper(), at=exc.start),
            field="file",
        ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def file_encoding(path: Path) -> str:
    """The encoding of a file on disk, read once in blocks (memory bounded): UTF-8 if the whole
    file is valid UTF-8, UTF-16 when it starts with its byte-order mark, else Windows-1252."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"
        bom = head.startswith(codecs.BOM_UTF8)
        fh.seek(0)
        for enc in ("utf-8", "cp1252"):
            decoder = codecs.getincrementaldecoder(enc)()
            try:
                while block := fh.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return ("utf-8-sig" if bom else "utf-8") if enc == "utf-8" else enc
            except UnicodeDecodeError:
                fh.seek(0)
    return "latin-1"


def _rows(reader: Any, header: list[str]) -> Iterator[Row]:
    for values in reader:
        if not any(v.strip() for v in values):
            continue  # a blank line
        yield reader.line_num, dict(zip(header, values, strict=False))


def _unreadable(reader: Any, exc: csv.Error) -> InvalidInput:
    """The 422 for a file the CSV reader gave up on, naming the line it reached."""
    return InvalidInput(
        _("cannot be read as CSV after line {line} ({error})").format(
            line=reader.line_num, error=exc
        ),
        field="file",
    )


def read_csv(fh: IO[bytes], size: int | None) -> tuple[CsvInfo, list[Row]]:
    """Header and (line number, row) of an uploaded CSV (``;``, ``,`` or tab), within limits."""
    if size is not None and size > MAX_BYTES:
        raise too_large(_("The file is {mb} MB").format(mb=number(size / 2**20, 1)))
    data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise too_large(_("The file is larger than the limit"))
    lines = data.count(b"\n")
    if lines > MAX_ROWS + 1:
        raise too_large(_("The file has {n} lines").format(n=number(lines)))
    textdata, encoding = _decode(data)
    delimiter = _delimiter(textdata.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(textdata, newline=""), delimiter=delimiter)
    try:
        header, base, dups = _unique_header(next(reader))
        rows = list(_rows(reader, header))
    except StopIteration:
        raise InvalidInput(_("is empty: expected a header line and rows"), field="file") from None
    except csv.Error as exc:
        raise _unreadable(reader, exc) from exc
    if len(rows) > MAX_ROWS:
        raise too_large(_("The file has {n} rows").format(n=number(len(rows))))
    return CsvInfo(header, base, dups, encoding, delimiter), rows


class CsvStream:
    """A CSV file on disk read chunk by chunk (``;``, ``,`` or tab; UTF-8, UTF-16 or
    Windows-1252): memory bounded by a chunk."""

    def __init__(self, path: Path, chunk_rows: int = CHUNK_ROWS):
        self.path, self.chunk_rows = Path(path), chunk_rows
        encoding = file_encoding(self.path)
        self._fh = open(self.path, encoding=encoding, newline="")  # noqa: SIM115 (closed below)
        try:
            first = self._fh.readline()
            self._fh.seek(0)
            self.reader = csv.reader(self._fh, delimiter=_delimiter(first))
            try:
                header, base, dups = _unique_header(next(self.reader))
            except StopIteration:
                raise InvalidInput(
                    _("is empty: expected a header line and rows"), field="file"
                ) from None
            self.info = CsvInfo(header, base, dups, encoding, _delimiter(first))
            self.header = header
        except UnicodeDecodeError as exc:
            self.close()
            raise InvalidInput(
                _("is not valid {encoding} in its header line; save it again as CSV UTF-8").format(
                    encoding=exc.encoding.upper()
                ),
                field="file",
            ) from exc
        except BaseException:
            self.close()
            raise

    def chunks(self) -> Iterator[list[Row]]:
        """Lists of up to ``chunk_rows`` (line number, row), in file order."""
        chunk: list[Row] = []
        reader = self.reader
        try:
            for row in _rows(reader, self.header):
                chunk.append(row)
                if len(chunk) >= self.chunk_rows:
                    yield chunk
                    chunk = []
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                _("is not valid {encoding} after line {line}; save it again as CSV UTF-8").format(
                    encoding=exc.encoding.upper(), line=reader.line_num
                ),
                field="file",
            ) from exc
        except csv.Error as exc:
            raise _unreadable(reader, exc) from exc
        if chunk:
            yield chunk

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
