"""Doors: BAN (Base Adresse Nationale) and BAL (Base Adresse Locale) CSV into ``address``.

Streamed: the file is read in blocks, parsed and checked with pyarrow (row by row where a block
holds quotes, blank lines or wrong field counts, and for every row a vectorised check doubts),
and sent with COPY BINARY in chunks straight into ``address``, whose point is a stored generated
column (no UPDATE pass). A large first load rebuilds the indexes once and adds the geocoder's
counts once (see ``_load``). Re-importing the same
source file updates its doors in place (ids stay stable for turfs and visits) and removes those no
longer in it. Real doors replace the synthetic demo doors of the communes they cover.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from app.errors import ImportFailed
from app.services.reference.imports.common import (
    Fault,
    ImportReport,
    Progress,
    RejectLog,
    SplitReader,
    connect,
    fail,
    find_columns,
    now,
    open_csv,
    record_run,
    translate_db_error,
)

BAN_SPEC = {
    "id": ["id"],
    "numero": ["numero"],
    "suffixe": ["rep", "suffixe"],
    "nom_voie": ["nom_voie"],
    "code_postal": ["code_postal"],
    "code_insee": ["code_insee"],
    "nom_commune": ["nom_commune"],
    "lon": ["lon", "long", "longitude"],
    "lat": ["lat", "latitude"],
    "households": ["households"],  # not BAN: used by the synthetic demo doors
    "code_insee_ancienne_commune": ["code_insee_ancienne_commune"],
    "nom_ancienne_commune": ["nom_ancienne_commune"],
}
BAL_SPEC = {
    "id": ["cle_interop"],
    "numero": ["numero"],
    "suffixe": ["suffixe"],
    "nom_voie": ["voie_nom"],
    "code_postal": ["code_postal"],
    "code_insee": ["commune_insee"],
    "nom_commune": ["commune_nom"],
    "lon": ["long", "lon"],
    "lat": ["lat"],
    # a commune nouvelle's former commune (the geocoder knows the door by that name too)
    "code_insee_ancienne_commune": ["commune_deleguee_insee"],
    "nom_ancienne_commune": ["commune_deleguee_nom"],
}
REQUIRED = ["id", "numero", "nom_voie", "code_insee", "lon", "lat"]
BAL_NO_NUMBER = "99999"  # BAL convention: a named place or street with no address
CHUNK_ROWS = 20_000
_COMMUNE = re.compile(r"^\d[\dAB]\d{3}$")

UPSERT_FROM_STAGE = """
INSERT INTO address (ban_id, numero, suffixe, nom_voie, code_postal, code_insee, nom_commune,
                     code_insee_ancienne_commune, nom_ancienne_commune,
                     lon, lat, households, source, source_file)
SELECT ban_id, numero, suffixe, nom_voie, code_postal, code_insee, nom_commune,
       code_insee_ancienne_commune, nom_ancienne_commune,
       lon, lat, households, source, source_file
FROM address_stage
ON CONFLICT (ban_id) DO UPDATE SET
    numero = excluded.numero, suffixe = excluded.suffixe, nom_voie = excluded.nom_voie,
    code_postal = excluded.code_postal, code_insee = excluded.code_insee,
    nom_commune = excluded.nom_commune,
    code_insee_ancienne_commune = excluded.code_insee_ancienne_commune,
    nom_ancienne_commune = excluded.nom_ancienne_commune, lon = excluded.lon, lat = excluded.lat,
    households = excluded.households, source = excluded.source,
    source_file = excluded.source_file
"""


def _positive(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


def parse_communes(value: str | None) -> frozenset[str] | None:
    """``"92002,92014"`` -> a set of INSEE codes (None: no filter); refuse malformed codes."""
    if not value:
        return None
    codes = frozenset(c.strip().upper() for c in value.split(",") if c.strip())
    bad = sorted(c for c in codes if not _COMMUNE.match(c))
    if bad:
        raise ImportFailed(
            f"--commune: {', '.join(bad)} is not a 5-character INSEE commune code (e.g. 92002).",
            extra={"field": "commune"},
        )
    return codes


_NAMES = (
    "id", "numero", "suffixe", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon",
    "lat", "households", "code_insee_ancienne_commune", "nom_ancienne_commune",
)  # fmt: skip
# Vectorised checks: a row passing them is certainly accepted by ``_Rows.accept`` (which decides,
# with its exact messages, for every row that does not pass them).
_DIGITS = r"^[0-9]{1,9}$"  # fits an integer column
INT4_MAX = 2**31 - 1
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_INSEE = r"^[0-9][0-9AB][0-9]{3}$"
BLOCK_CHARS = 1 << 20  # ~1 MB of text parsed at once (bounded memory)


class _Rows:
    """Parses the input and yields COPY BINARY chunks; counts, logs and aggregates as it goes.

    Blocks of plain lines (no quote, no blank line, the header's number of fields) are parsed and
    checked by pyarrow (C++, vectorised); a row failing a vectorised check is judged again by the
    row-by-row checks, which give the rejected-row messages. Other blocks go row by row.
    """

    def __init__(self, inp, cols, fmt, communes, log, source, source_file, progress, fault):
        self.inp, self.cols, self.fmt, self.communes = inp, cols, fmt, communes
        self.log, self.source, self.source_file = log, source, source_file
        self.progress, self.fault = progress, fault
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
            self.log.reject(line, "lon/lat", f"no valid WGS84 point ({lon!r}, {lat!r})")
            return False
        if not row[c["id"]]:
            self.log.reject(line, "id", "empty id")
            return False
        if code not in self.commune_codes:
            if not _COMMUNE.match(code):
                self.log.reject(line, "code_insee", f"{code!r} is not an INSEE code")
                return False
            self.commune_codes.add(code)
        i_hh = c.get("households")
        if i_hh is not None and not (row[i_hh].isascii() and _positive(row[i_hh])):
            self.log.reject(line, "households", f"{row[i_hh]!r} is not a positive number")
            return False
        return True

    def _bad_number(self, line: int, num: str) -> None:
        if num == BAL_NO_NUMBER:
            self.log.skip(line, "numero", "named place without a number (BAL 99999)")
        elif num == "":
            self.log.reject(line, "numero", "empty house number")
        elif num.isascii() and num.isdigit():
            self.log.reject(line, "numero", f"{num!r} is too large a house number")
        else:
            self.log.reject(line, "numero", f"{num!r} is not a house number")

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
                    f"{len(row)} fields instead of {ncols} (wrong delimiter or unquoted value?)",
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
        if q in block or block[:1] in (lf, cr):  # (other blank lines: see below)
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
        c = self.cols
        col = {n: t[f"c{c[n]}"] for n in self.names}
        n = t.num_rows
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

    # ------------------------------------------------------------ output

    def chunks(self):
        """Yield COPY BINARY chunks of CHUNK_ROWS rows (the last one fewer), then the trailer."""
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
            blocks: Iterator = self.inp.byte_blocks(BLOCK_CHARS)
            q, lf, cr, crlf, carry = b'"', b"\n", b"\r", b"\r\n", b""
        else:
            blocks = self.inp.blocks(BLOCK_CHARS)
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
            while npending >= CHUNK_ROWS:
                whole = pa.concat_tables(pending)
                yield self._flush(whole.slice(0, CHUNK_ROWS))
                rest = whole.slice(CHUNK_ROWS)
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
        self.progress.update(self.inp.position, self.read)
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


async def _aiter(gen):
    for chunk in gen:
        yield chunk
        await asyncio.sleep(0)


def _copy_args(rows: _Rows) -> dict:
    """COPY options for the chunks of ``_Rows`` (binary)."""
    return dict(columns=rows.columns(), format="binary")


def _detect_format(path: Path, header: list[str]) -> str:
    names = {h.lower() for h in header}
    if "cle_interop" in names:
        return "bal"
    if "id" in names and "nom_voie" in names:
        return "ban"
    shown = ", ".join(header[:10])
    raise fail(
        path,
        "not a BAN or BAL address file: expected the BAN columns (id, numero, rep, nom_voie, "
        "code_insee, lon, lat, …) or the BAL columns (cle_interop, numero, suffixe, voie_nom, "
        f"commune_insee, long, lat, …). The header has: {shown}.",
        line=1,
    )


async def import_addresses(
    owner_url: str,
    path: Path | str,
    *,
    communes: str | frozenset[str] | None = None,
    source: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    max_rejects: int = 0,
    report_path: Path | None = None,
    quiet: bool = False,
    fault: Fault = None,
    defer_indexes: bool | None = None,
) -> ImportReport:
    """Import a BAN or BAL CSV (``;``, .csv or .csv.gz) in one transaction; return the report."""
    path = Path(path)
    if isinstance(communes, str) or communes is None:
        communes = parse_communes(communes)
    started_wall, t0 = time.time(), now()
    report = ImportReport("addresses", path, path.name)
    log = RejectLog(path, report_path)
    try:
        with open_csv(
            path,
            delimiters=[";"],
            delimiter=delimiter,
            encoding=encoding,
            hint_columns=["id", "cle_interop"],
        ) as inp:
            fmt = _detect_format(path, inp.header)
            spec = BAL_SPEC if fmt == "bal" else BAN_SPEC
            cols = find_columns(path, inp.header, spec, REQUIRED)
            src = source or fmt
            if src not in ("ban", "bal", "synthetic"):
                raise fail(path, f"source {src!r} must be ban, bal or synthetic.")
            progress = Progress(f"addresses {path.name}", inp.size, quiet)
            rows = _Rows(inp, cols, fmt, communes, log, src, path.name, progress, fault)
            try:
                async with connect(owner_url) as conn:
                    try:
                        async with conn.transaction():
                            loaded = await _load(conn, rows, path, communes, defer_indexes)
                            log.check(max_rejects)
                            if rows.read == 0:
                                raise fail(path, "the file has a header but no rows.", line=2)
                            if loaded == 0:
                                raise fail(
                                    path,
                                    "no door to load: every row was skipped, rejected or "
                                    "filtered out"
                                    + (
                                        f" by --commune {','.join(sorted(communes))}"
                                        if communes
                                        else ""
                                    )
                                    + ".",
                                )
                            replaced = (
                                await conn.execute(
                                    "DELETE FROM address WHERE source = 'synthetic'"
                                    " AND code_insee = ANY($1::text[])",
                                    sorted(rows.commune_codes),
                                )
                                if src != "synthetic"
                                else "DELETE 0"
                            )
                            report.rows_read, report.rows_loaded = rows.read, loaded
                            report.rows_skipped, report.rows_rejected = log.skipped, log.rejected
                            report.rows_filtered = rows.filtered
                            report.details["format"] = fmt
                            report.details.update(rows.timings)
                            report.details["communes"] = sorted(rows.commune_codes)
                            n_replaced = int(replaced.split()[-1])
                            if n_replaced:
                                report.notes.append(
                                    f"{n_replaced:,} synthetic demo doors of "
                                    f"{', '.join(sorted(rows.commune_codes))} were replaced by "
                                    "these real doors."
                                )
                            report.seconds = now() - t0
                            await record_run(conn, report, source=src, started=started_wall)
                    except asyncpg.UniqueViolationError as exc:
                        raise await _duplicate(conn, path, exc, inp.delimiter, encoding) from None
                    except asyncpg.PostgresError as exc:
                        raise translate_db_error(path, exc) from None
            finally:
                progress.close(inp.size)
    finally:
        report.report_path = log.close()
    report.seconds = now() - t0
    return report


SECONDARY_INDEXES = """
SELECT i.relname AS index, pg_get_indexdef(i.oid) AS indexdef,
       c.conname AS constraint, pg_get_constraintdef(c.oid) AS constraintdef,
       t.spcname AS tablespace
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_tablespace t ON t.oid = i.reltablespace
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = 'address'::regclass AND NOT x.indisprimary
  AND x.indpred IS NULL  -- partial indexes (e.g. synthetic doors) stay: few rows, no full scan
ORDER BY i.relname
"""
DEFER_MIN_ROWS = 50_000  # below, keeping the indexes costs less than the exclusive lock
BYTES_PER_ROW = 150  # a BAN line is ~150-250 bytes; gzip divides by ~4


def _estimated_rows(path: Path) -> int:
    size = path.stat().st_size * (4 if path.suffix == ".gz" else 1)
    return size // BYTES_PER_ROW


async def _should_defer(conn: asyncpg.Connection, path: Path, force: bool | None) -> bool:
    """Rebuild the secondary indexes once after COPY when the load dwarfs the table."""
    if force is not None:
        return force
    est = _estimated_rows(path)
    if est < DEFER_MIN_ROWS:
        return False
    current = await conn.fetchval(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'address'::regclass"
    )
    return est >= current


async def _drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop address's secondary indexes (not the primary key nor partial indexes); return the
    SQL to rebuild them.

    Done inside the import's transaction: a failure restores them with everything else. The
    table is locked (ACCESS EXCLUSIVE) until the import commits.
    """
    rebuild = []
    for ix in await conn.fetch(SECONDARY_INDEXES):
        # pg_get_indexdef leaves the tablespace out: an index kept elsewhere goes back there.
        space = ix["tablespace"]
        where = f' TABLESPACE "{space}"' if space else ""
        if ix["constraint"]:
            try:
                async with conn.transaction():  # savepoint: kept if something depends on it
                    await conn.execute(f'ALTER TABLE address DROP CONSTRAINT "{ix["constraint"]}"')
            except asyncpg.DependentObjectsStillExistError:
                continue
            rebuild.append(
                f'ALTER TABLE address ADD CONSTRAINT "{ix["constraint"]}" {ix["constraintdef"]}'
                + (f" USING INDEX{where}" if space else "")
            )
        else:
            await conn.execute(f'DROP INDEX "{ix["index"]}"')
            rebuild.append(ix["indexdef"] + where)
    return rebuild


async def _load(
    conn: asyncpg.Connection, rows: _Rows, path: Path, communes, defer: bool | None = None
) -> int:
    """COPY the rows; straight into ``address`` on a first load, through a stage otherwise."""
    scope = "source_file = $1" + (" AND code_insee = ANY($2::text[])" if communes else "")
    args = [path.name] + ([sorted(communes)] if communes else [])
    existing = await conn.fetchval(f"SELECT count(*) FROM address WHERE {scope}", *args)
    if existing == 0:
        bulk = await _should_defer(conn, path, defer)
        rebuild, geocode_trigger = [], None
        if bulk:
            # Nobody else writes doors until commit: ids can be numbered here (no nextval per
            # row), the indexes rebuilt once, the geocoder's counts added once.
            await conn.execute("LOCK TABLE address IN ACCESS EXCLUSIVE MODE")
            rebuild = await _drop_secondary_indexes(conn)
            geocode_trigger = await _drop_geocode_trigger(conn)
            rows.first_id = await conn.fetchval(f"SELECT nextval('{ID_SEQUENCE}')")
        t0 = now()
        await conn.copy_to_table("address", source=_aiter(rows.chunks()), **_copy_args(rows))
        rows.timings["copy_seconds"] = round(now() - t0, 2)
        if rows.first_id is not None and rows.sent:
            await conn.execute(f"SELECT setval('{ID_SEQUENCE}', $1)", rows.first_id + rows.sent - 1)
        if rebuild:
            rows.progress.close()
            t0 = now()
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for sql in rebuild:
                await conn.execute(sql)
            rows.timings["index_rebuild_seconds"] = round(now() - t0, 2)
            rows.timings["indexes_rebuilt"] = len(rebuild)
        if bulk:
            t0 = now()
            await conn.execute("ANALYZE address")
            rows.timings["analyze_seconds"] = round(now() - t0, 2)
        if geocode_trigger is not None:  # (after ANALYZE: the planner knows the new rows)
            t0 = now()
            await _add_geocode_counts(conn, rows.first_id, rows.sent)
            await conn.execute(geocode_trigger)
            rows.timings["geocode_seconds"] = round(now() - t0, 2)
        return rows.sent
    # Replace the same source: update doors in place (stable ids), drop the ones gone.
    await conn.execute(
        "CREATE TEMP TABLE address_stage (LIKE address INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.execute("ALTER TABLE address_stage DROP COLUMN geom, DROP COLUMN id")
    t0 = now()
    await conn.copy_to_table("address_stage", source=_aiter(rows.chunks()), **_copy_args(rows))
    rows.timings["copy_seconds"] = round(now() - t0, 2)
    t0 = now()
    dup = await conn.fetchrow(
        "SELECT ban_id, count(*) AS n FROM address_stage GROUP BY ban_id HAVING count(*) > 1 "
        "LIMIT 1"
    )
    if dup:
        raise asyncpg.UniqueViolationError(f"Key (ban_id)=({dup['ban_id']}) duplicated")
    await conn.execute(
        f"DELETE FROM address a WHERE {scope.replace('source_file', 'a.source_file')}"
        " AND NOT EXISTS (SELECT 1 FROM address_stage s WHERE s.ban_id = a.ban_id)",
        *args,
    )
    await conn.execute(UPSERT_FROM_STAGE)
    rows.timings["upsert_seconds"] = round(now() - t0, 2)
    return rows.sent


GEOCODE_TRIGGER = "geocode_index_insert"
ID_SEQUENCE = "address_id_seq"
# What the geocoder's insert trigger (migration 0018, porte_geocode_index_add) does with its
# transition table, done once over the doors just loaded: a bulk load takes the trigger off (and
# puts it back before commit), so that COPY does not keep a copy of every row (a disabled trigger
# still would). The counts are made by PostgreSQL (a grouped scan of the new ids, spilling to disk
# past work_mem), not in Python, where a national file's ~2 M streets would take ~600 MB. A test
# compares the result with a recount from ``address``.
GEOCODE_ADD = [
    # the name normalised once per distinct name (0.2 ms each; "Grande Rue" is in many communes)
    """
    WITH g AS MATERIALIZED (
        SELECT code_insee, nom_voie, count(*) AS n FROM address
        WHERE id BETWEEN $1 AND $2 AND code_insee IS NOT NULL AND nom_voie IS NOT NULL
        GROUP BY 1, 2
    ), v AS MATERIALIZED (
        SELECT nom_voie, porte_norm_name(nom_voie) AS voie_norm
        FROM (SELECT DISTINCT nom_voie FROM g) d
    )
    INSERT INTO geocode_street AS s (code_insee, nom_voie, voie_norm, n)
    SELECT g.code_insee, g.nom_voie, v.voie_norm, g.n FROM g JOIN v USING (nom_voie)
    ON CONFLICT (code_insee, nom_voie) DO UPDATE SET n = s.n + excluded.n
    """,
    """
    INSERT INTO geocode_commune AS c (code_insee, code_postal, nom_commune, nom_ancienne, n)
    SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
           coalesce(nom_ancienne_commune, ''), count(*)
    FROM address WHERE id BETWEEN $1 AND $2 AND code_insee IS NOT NULL GROUP BY 1, 2, 3, 4
    ON CONFLICT (code_insee, code_postal, nom_commune, nom_ancienne)
    DO UPDATE SET n = c.n + excluded.n
    """,
]


async def _drop_geocode_trigger(conn: asyncpg.Connection) -> str | None:
    """Drop the geocoder's insert trigger (if there and enabled); return the SQL to recreate it.

    Inside the import's transaction: a failure restores it with everything else.
    """
    sql = await conn.fetchval(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = 'address'::regclass AND tgname = $1 AND tgenabled <> 'D'",
        GEOCODE_TRIGGER,
    )
    if sql is None:
        return None
    await conn.execute(f"DROP TRIGGER {GEOCODE_TRIGGER} ON address")
    return sql


async def _add_geocode_counts(conn: asyncpg.Connection, first_id: int, n: int) -> None:
    """Add the ``n`` doors loaded from id ``first_id`` on to ``geocode_street`` and
    ``geocode_commune``."""
    if n:
        for sql in GEOCODE_ADD:
            await conn.execute(sql, first_id, first_id + n - 1)


async def _duplicate(conn, path: Path, exc, delimiter: str, encoding: str) -> ImportFailed:
    """Explain a duplicated id: which lines of the file, or which file already holds it."""
    m = re.search(r"\(ban_id\)=\((.*?)\)", str(exc) + " " + (getattr(exc, "detail", "") or ""))
    ident = m.group(1) if m else None
    if ident is None:
        return translate_db_error(path, exc)
    lines = _lines_with_id(path, ident, delimiter, encoding)
    if len(lines) > 1:
        return fail(
            path,
            f"duplicated id {ident!r} on lines {', '.join(map(str, lines[:10]))}: every door id "
            "must be unique. Remove the duplicates and import again.",
            line=lines[1],
        )
    other = await conn.fetchval("SELECT source_file FROM address WHERE ban_id = $1", ident)
    return fail(
        path,
        f"id {ident!r} (line {lines[0] if lines else '?'}) is already loaded from "
        f"{other or 'another file'}; a door id may come from one file only.",
        line=lines[0] if lines else None,
    )


def _lines_with_id(path: Path, ident: str, delimiter: str, encoding: str) -> list[int]:
    """Line numbers whose id column equals ``ident`` (second pass, only after a failure)."""
    out = []
    with open_csv(path, delimiters=[delimiter], encoding=encoding) as inp:
        fmt = _detect_format(path, inp.header)
        col = find_columns(path, inp.header, BAL_SPEC if fmt == "bal" else BAN_SPEC, ["id"])["id"]
        for row in inp.reader:
            if len(row) > col and row[col] == ident:
                out.append(inp.reader.line_num)
    return out
