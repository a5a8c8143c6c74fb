"""Parsing a BAN/BAL address file into COPY BINARY chunks for ``address`` (``AddressRows``).

The file is read in blocks. Blocks of plain lines (no quote, no blank line, the header's number of
fields) are parsed and checked by pyarrow (C++, vectorised); a row failing a vectorised check is
judged again by the row-by-row checks, which give the rejected-row messages. Other blocks go row
by row. Accepted rows are encoded as PostgreSQL's COPY BINARY tuples (numbers big-endian, text
UTF-8), ``chunk_rows`` at a time.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from app.i18n import _
from app.services.reference.imports.csvinput import SplitReader

BAL_NO_NUMBER = "99999"  # BAL convention: a named place or street with no address
COMMUNE = re.compile(r"^\d[\dAB]\d{3}$")


def _positive(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


_NAMES = (
    "id", "numero", "suffixe", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon",
    "lat", "households", "code_insee_ancienne_commune", "nom_ancienne_commune",
)  # fmt: skip
# Vectorised checks: a row passing them is certainly accepted by ``AddressRows.accept`` (which
# decides, with its exact messages, for every row that does not pass them).
_DIGITS = r"^[0-9]{1,9}$"  # fits an integer column
INT4_MAX = 2**31 - 1
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_INSEE = r"^[0-9][0-9AB][0-9]{3}$"


class AddressRows:
    """Parses the input and yields COPY BINARY chunks; counts, logs and aggregates as it goes.

    Blocks of plain lines (no quote, no blank line, the header's number of fields) are parsed and
    checked by pyarrow (C++, vectorised); a row failing a vectorised check is judged again by the
    row-by-row checks, which give the rejected-row messages. Other blocks go row by row. Rows are
    rejected or skipped into ``run.log``; progress goes to ``run.progress``.
    """

    def __init__(
        self,
        inp: Any,
        cols: dict[str, int],
        fmt: str,
        communes: frozenset[str] | None,
        run: Any,
        source: str,
        fault: Any,
        block_chars: int,
        chunk_rows: int,
    ):
        self.inp, self.cols, self.fmt, self.communes = inp, cols, fmt, communes
        self.run, self.log, self.source, self.source_file = run, run.log, source, run.path.name
        self.fault, self.block_chars, self.chunk_rows = fault, block_chars, chunk_rows
        self.read = self.sent = self.filtered = 0
        self.commune_codes: set[str] = set()
        self.timings: dict[str, float] = {}
        self.names = [n for n in _NAMES if n in cols]
        self.no_number = BAL_NO_NUMBER if fmt == "bal" else None
        self.first_id: int | None = None  # set: ids are numbered here, from this one

    def columns(self) -> list[str]:
        """The COPY column list (optional input columns absent from the file are left out;
        ``households`` then takes the table's default, 1)."""
        ids = [] if self.first_id is None else ["id"]
        return [*ids, *("ban_id" if n == "id" else n for n in self.names), "source", "source_file"]

    # ------------------------------------------------------------ row by row

    def accept(self, row: list[str], line: int) -> bool | None:
        """Check one row: True to load it, False if rejected/skipped (logged), None if filtered."""
        c = self.cols
        code = row[c["code_insee"]]
        if self.communes is not None and code not in self.communes:
            return None
        num = row[c["numero"]]
        if not (num.isascii() and num.isdigit()) or num == self.no_number or int(num) > INT4_MAX:
            self._bad_number(line, num)
            return False
        lon, lat = row[c["lon"]], row[c["lat"]]
        try:
            if not (lon + lat).isascii() or "_" in lon + lat:
                raise ValueError  # what float() takes but PostgreSQL would not
            flon, flat = float(lon), float(lat)
            if not (-180.0 <= flon <= 180.0 and -90.0 <= flat <= 90.0):
                raise ValueError
        except ValueError:
            self.log.reject(
                line,
                "lon/lat",
                _("no valid WGS84 point ({lon!r}, {lat!r})").format(lon=lon, lat=lat),
            )
            return False
        if not row[c["id"]]:
            self.log.reject(line, "id", _("empty id"))
            return False
        if code not in self.commune_codes:
            if not COMMUNE.match(code):
                self.log.reject(
                    line, "code_insee", _("{code!r} is not an INSEE code").format(code=code)
                )
                return False
            self.commune_codes.add(code)
        i_hh = c.get("households")
        if i_hh is not None and not (row[i_hh].isascii() and _positive(row[i_hh])):
            self.log.reject(
                line, "households", _("{value!r} is not a positive number").format(value=row[i_hh])
            )
            return False
        return True

    def _bad_number(self, line: int, num: str) -> None:
        if num == BAL_NO_NUMBER:
            self.log.skip(line, "numero", _("named place without a number (BAL 99999)"))
        elif num == "":
            self.log.reject(line, "numero", _("empty house number"))
        elif num.isascii() and num.isdigit():
            self.log.reject(
                line, "numero", _("{value!r} is too large a house number").format(value=num)
            )
        else:
            self.log.reject(line, "numero", _("{value!r} is not a house number").format(value=num))

    def _slow(self, block: str | bytes, line: int) -> pa.Table:
        """Row by row (quotes, blank lines, wrong field counts): the table to load."""
        if isinstance(block, bytes):
            block = block.decode("utf-8")  # strict: an error names the line (see chunks)
        ncols = len(self.inp.header)
        idx = [self.cols[n] for n in self.names]
        out: list[list[str]] = [[] for _ in idx]
        reader = SplitReader(
            io.StringIO(block, newline=""), self.inp.delimiter, self.inp.path, "", line_num=line
        )
        read = filtered = 0
        for row in reader:
            read += 1
            if len(row) != ncols:
                if not row or (len(row) == 1 and not row[0].strip()):
                    read -= 1  # blank line
                    continue
                self.log.reject(
                    reader.line_num, "",
                    _(
                        "{n} fields instead of {expected} (wrong delimiter or unquoted value?)"
                    ).format(n=len(row), expected=ncols),
                )  # fmt: skip
                continue
            ok = self.accept(row, reader.line_num)
            if ok is None:
                filtered += 1
            elif ok:
                for values, i in zip(out, idx, strict=True):
                    values.append(row[i])
        self.read += read
        self.filtered += filtered
        return pa.table([pa.array(v, pa.string()) for v in out], names=self.names)

    # ------------------------------------------------------------ vectorised

    def _fast(self, block: str | bytes, line: int) -> pa.Table | None:
        """A block of plain lines, vectorised; None when it must go row by row."""
        t = self._parse_plain(block)
        if t is None:
            return None
        lf = b"\n" if isinstance(block, bytes) else "\n"
        ncols = len(self.inp.header)
        c = self.cols
        col = {n: t[f"c{c[n]}"] for n in self.names}
        n = t.num_rows
        code = col["code_insee"]
        good = self._passes(col)
        keep, filtered = good, 0
        if self.communes is not None:
            inside = pc.is_in(code, value_set=pa.array(sorted(self.communes), pa.string()))
            filtered = n - pc.sum(inside).as_py()
            keep = pc.and_(good, inside)
            good = pc.or_(good, pc.invert(inside))  # filtered rows are not judged
        judge: list[tuple[int, list[str]]] = []
        if not pc.all(good).as_py():
            lines = block.split(lf)
            for i in pc.indices_nonzero(pc.invert(good)).to_pylist():
                text = lines[i].decode("utf-8") if isinstance(lines[i], bytes) else lines[i]
                row = text.rstrip("\r").split(self.inp.delimiter)
                if len(row) != ncols:  # a blank line (pyarrow made it a row of empty values)
                    return None
                judge.append((i, row))
        self.read += n
        self.filtered += filtered
        if judge:
            mask = keep.to_numpy(zero_copy_only=False).copy()
            for i, row in judge:
                mask[i] = bool(self.accept(row, line + 1 + i))
            keep = pa.array(mask)
        t = t.filter(keep)
        self.commune_codes.update(pc.unique(t[f"c{c['code_insee']}"]).to_pylist())
        return pa.table([t[f"c{c[n]}"] for n in self.names], names=self.names)

    def _parse_plain(self, block: str | bytes) -> pa.Table | None:
        """The block's wanted columns as strings (pyarrow); None when it is not plain lines."""
        if isinstance(block, bytes):
            q, lf, cr = b'"', b"\n", b"\r"
            data = block
            try:  # every line must be valid UTF-8, not only the columns kept
                whole = pa.py_buffer(block)
                ends = pa.array([0, len(block)], pa.int64()).buffers()[1]
                pa.Array.from_buffers(pa.large_string(), 1, [None, ends, whole]).validate(full=True)
            except pa.ArrowInvalid:
                return None
        else:
            q, lf, cr = '"', "\n", "\r"
            data = block.encode("utf-8")
        if q in block or block[:1] in (lf, cr):  # (other blank lines: see ``_fast``)
            return None
        if cr in block and block.count(cr) != block.count(cr + lf):
            return None
        ncols = len(self.inp.header)
        wanted = sorted({self.cols[n] for n in self.names})
        try:
            t = pa_csv.read_csv(
                io.BytesIO(data),
                read_options=pa_csv.ReadOptions(
                    column_names=[f"c{i}" for i in range(ncols)], use_threads=False,
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.inp.delimiter, quote_char=False, double_quote=False,
                    escape_char=False, newlines_in_values=False, ignore_empty_lines=False,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={f"c{i}": pa.string() for i in wanted},
                    include_columns=[f"c{i}" for i in wanted],
                    strings_can_be_null=False, null_values=[], quoted_strings_can_be_null=False,
                ),
            )  # fmt: skip
        except pa.ArrowInvalid:  # a row with another number of fields
            return None
        return t

    def _passes(self, col: dict[str, Any]) -> Any:
        """The rows certainly accepted by ``accept`` (vectorised checks; the others are judged
        again row by row)."""
        code, num = col["code_insee"], col["numero"]
        good = pc.and_(pc.match_substring_regex(num, _DIGITS), pc.not_equal(col["id"], ""))
        if self.no_number is not None:
            good = pc.and_(good, pc.not_equal(num, self.no_number))
        for name, bound in (("lon", 180.0), ("lat", 90.0)):
            ok = pc.match_substring_regex(col[name], _DECIMAL)
            value = pc.cast(pc.if_else(ok, col[name], "0"), pa.float64())
            good = pc.and_(good, pc.and_(ok, pc.less_equal(pc.abs(value), bound)))
        good = pc.and_(good, pc.match_substring_regex(code, _INSEE))
        if "households" in col:
            hh = col["households"]
            ok = pc.match_substring_regex(hh, _DECIMAL)
            value = pc.cast(pc.if_else(ok, hh, "0"), pa.float64())
            good = pc.and_(good, pc.and_(ok, pc.greater(value, 0.0)))
        return good

    # ------------------------------------------------------------ output

    def chunks(self):
        """Yield COPY BINARY chunks of ``chunk_rows`` rows (the last one fewer), then the
        trailer."""
        gc_was_on = gc.isenabled()
        gc.disable()  # no reference cycles made here; full collections cost ~20 % of the parse
        try:
            yield from self._chunks()
            yield (b"" if self.sent else PGCOPY_HEADER) + PGCOPY_TRAILER
        finally:
            if gc_was_on:
                gc.enable()

    def _chunks(self):
        line = 1  # the header
        pending: list[pa.Table] = []
        npending = 0
        if self.inp.is_utf8:
            blocks: Iterator = self.inp.byte_blocks(self.block_chars)
            q, lf, cr, crlf, carry = b'"', b"\n", b"\r", b"\r\n", b""
        else:
            blocks = self.inp.blocks(self.block_chars)
            q, lf, cr, crlf, carry = '"', "\n", "\r", "\r\n", ""
        while True:
            try:
                block = next(blocks, None)
            except (UnicodeDecodeError, EOFError, OSError) as exc:
                raise self.inp.explain_error(exc, line) from None
            if block is None:
                if not carry:
                    break
                block, carry = carry, carry[:0]
            elif carry:
                block, carry = carry + block, carry[:0]
            if q in block and block.count(q) % 2:  # a quoted value runs into the next block
                carry = block
                if len(carry) < 1 << 28:
                    continue
            table = self._fast(block, line)
            if table is None:
                try:
                    table = self._slow(block, line)
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise self.inp.explain_error(exc, line) from None
                # line breaks as the reader counts them: \n, \r\n or \r
                line += block.count(lf) + block.count(cr) - block.count(crlf)
            else:
                line += block.count(lf)  # no lone \r in a vectorised block
            if table.num_rows:
                pending.append(table)
                npending += table.num_rows
            while npending >= self.chunk_rows:
                whole = pa.concat_tables(pending)
                yield self._flush(whole.slice(0, self.chunk_rows))
                rest = whole.slice(self.chunk_rows)
                pending, npending = [rest], rest.num_rows
        if npending:
            yield self._flush(pa.concat_tables(pending))

    def _flush(self, t: pa.Table) -> bytes:
        n = t.num_rows
        cols: list[np.ndarray | pa.Array] = []
        if self.first_id is not None:
            start = self.first_id + self.sent
            cols.append(np.arange(start, start + n, dtype=">i8"))
        for name in self.names:
            col = t[name].combine_chunks()
            kind = _BINARY_TYPES.get(name)
            if kind is None:
                cols.append(col)
                continue
            try:  # values the vectorised checks passed; the others, as Python reads them
                values = pc.cast(col, kind[0]).to_numpy()
            except pa.ArrowInvalid:
                values = np.array([kind[1](v) for v in col.to_pylist()])
            cols.append(values.astype(kind[2]))
        for value in (self.source, self.source_file):
            cols.append(pc.fill_null(pa.nulls(n, pa.string()), value))
        out = _binary_tuples(cols, n)
        if self.sent == 0:
            out = PGCOPY_HEADER + out
        self.sent += n
        self.run.progress(self.inp.position, self.read)
        if self.fault is not None:
            self.fault(self.sent)
        return out


# COPY BINARY: the numbers are sent as PostgreSQL's binary values (big-endian), the text as UTF-8.
PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
PGCOPY_TRAILER = b"\xff\xff"
_BINARY_TYPES = {
    "numero": (pa.int32(), int, ">i4"),
    "lon": (pa.float64(), float, ">f8"),
    "lat": (pa.float64(), float, ">f8"),
    "households": (pa.float32(), float, ">f4"),
}


def _binary_tuples(cols: list[np.ndarray | pa.Array], n: int) -> bytes:
    """``n`` COPY BINARY tuples from columns: numpy arrays of big-endian numbers, or pyarrow
    string arrays (an empty string is sent as NULL, as the text formats do). Each field becomes
    a binary array (length word + value), joined row by row by pyarrow: the joined data is the
    tuples end to end."""
    if n == 0:
        return b""
    parts = [_fixed(np.full((n, 1), len(cols), dtype=">i2"))]  # the field count
    for col in cols:
        if isinstance(col, np.ndarray):
            word = np.full((n, 1), col.dtype.itemsize, dtype=">i4").view(np.uint8)
            parts.append(_fixed(np.hstack([word, col.reshape(n, 1).view(np.uint8)])))
        else:
            col = col.cast(pa.binary())
            lens = pc.binary_length(col).to_numpy(zero_copy_only=False)
            parts.append(_fixed(np.where(lens == 0, -1, lens).astype(">i4").reshape(n, 1)))
            parts.append(col)
    joined = pc.binary_join_element_wise(*parts, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset :]
    start, end = int(offsets[0]), int(offsets[n])
    return joined.buffers()[2].slice(start, end - start).to_pybytes()


def _fixed(values: np.ndarray) -> pa.Array:
    """A pyarrow binary array whose i-th value is the bytes of row i of ``values`` (2-D)."""
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), -1)
    width = raw.shape[1]
    offsets = np.arange(0, (len(raw) + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), len(raw), [None, pa.py_buffer(offsets), pa.py_buffer(raw)]
    )
