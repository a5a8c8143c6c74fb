"""Doors: BAN (Base Adresse Nationale) and BAL (Base Adresse Locale) CSV into ``address``.

Streamed: the file is parsed row by row and sent with COPY (text format) in chunks straight into
``address``, whose point is a stored generated column (no UPDATE pass). Re-importing the same
source file updates its doors in place (ids stay stable for turfs and visits) and removes those no
longer in it. Real doors replace the synthetic demo doors of the communes they cover.
"""

from __future__ import annotations

import asyncio
import csv
import re
import time
from operator import itemgetter
from pathlib import Path

import asyncpg

from app.errors import ImportFailed
from app.services.imports.common import (
    Fault,
    ImportReport,
    Progress,
    RejectLog,
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
}
REQUIRED = ["id", "numero", "nom_voie", "code_insee", "lon", "lat"]
BAL_NO_NUMBER = "99999"  # BAL convention: a named place or street with no address
CHUNK_ROWS = 20_000
_COMMUNE = re.compile(r"^\d[\dAB]\d{3}$")

UPSERT_FROM_STAGE = """
INSERT INTO address (ban_id, numero, suffixe, nom_voie, code_postal, code_insee, nom_commune,
                     lon, lat, households, source, source_file)
SELECT ban_id, numero, suffixe, nom_voie, code_postal, code_insee, nom_commune,
       lon, lat, households, source, source_file
FROM address_stage
ON CONFLICT (ban_id) DO UPDATE SET
    numero = excluded.numero, suffixe = excluded.suffixe, nom_voie = excluded.nom_voie,
    code_postal = excluded.code_postal, code_insee = excluded.code_insee,
    nom_commune = excluded.nom_commune, lon = excluded.lon, lat = excluded.lat,
    households = excluded.households, source = excluded.source,
    source_file = excluded.source_file
"""


_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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


class _Rows:
    """Parses the input and yields COPY text chunks; counts and logs as it goes."""

    def __init__(self, inp, cols, fmt, communes, log, source, source_file, progress, fault):
        self.inp, self.cols, self.fmt, self.communes = inp, cols, fmt, communes
        self.log, self.source, self.source_file = log, source, source_file
        self.progress, self.fault = progress, fault
        self.read = self.sent = self.filtered = 0
        self.commune_codes: set[str] = set()
        self.timings: dict[str, float] = {}

    def columns(self) -> list[str]:
        """The COPY column list (optional input columns absent from the file are left out)."""
        c = self.cols
        names = [
            n for n in ("id", "numero", "suffixe", "nom_voie", "code_postal", "code_insee",
                        "nom_commune", "lon", "lat", "households") if n in c
        ]  # fmt: skip
        out = ["ban_id" if n == "id" else n for n in names]
        if "households" not in c:
            out.append("households")
        return [*out, "source", "source_file"]

    def chunks(self):
        """Yield bytes chunks in COPY text format (the hot loop: keep it lean)."""
        c = self.cols
        names = [
            n for n in ("id", "numero", "suffixe", "nom_voie", "code_postal", "code_insee",
                        "nom_commune", "lon", "lat", "households") if n in c
        ]  # fmt: skip
        pick = itemgetter(*(c[n] for n in names))
        i_id, i_num, i_insee, i_lon, i_lat = (
            c["id"], c["numero"], c["code_insee"], c["lon"], c["lat"]
        )  # fmt: skip
        i_hh = c.get("households")
        tail = (
            (self.source, self.source_file) if i_hh is not None
            else ("1", self.source, self.source_file)
        )  # fmt: skip
        ncols = len(self.inp.header)
        communes = self.communes
        no_number = BAL_NO_NUMBER if self.fmt == "bal" else None
        log = self.log
        reader = self.inp.split_reader()
        buf: list[str] = []
        add = buf.append
        join = "\t".join
        sep_count = len(self.columns()) - 1
        codes = self.commune_codes
        pending = read = filtered = 0
        try:
            for row in reader:
                read += 1
                if len(row) != ncols:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        read -= 1  # blank line
                        continue
                    log.reject(
                        reader.line_num, "",
                        f"{len(row)} fields instead of {ncols} (wrong delimiter or unquoted"
                        " value?)",
                    )  # fmt: skip
                    continue
                code = row[i_insee]
                if communes is not None and code not in communes:
                    filtered += 1
                    continue
                num = row[i_num]
                if not num.isdigit() or num == no_number:
                    self._bad_number(reader.line_num, num)
                    continue
                try:
                    flon, flat = float(row[i_lon]), float(row[i_lat])
                    if not (-180.0 <= flon <= 180.0 and -90.0 <= flat <= 90.0):
                        raise ValueError
                except ValueError:
                    log.reject(
                        reader.line_num, "lon/lat",
                        f"no valid WGS84 point ({row[i_lon]!r}, {row[i_lat]!r})",
                    )  # fmt: skip
                    continue
                if not row[i_id]:
                    log.reject(reader.line_num, "id", "empty id")
                    continue
                if code not in codes:
                    if not _COMMUNE.match(code):
                        log.reject(reader.line_num, "code_insee", f"{code!r} is not an INSEE code")
                        continue
                    codes.add(code)
                if i_hh is not None and not _positive(row[i_hh]):
                    log.reject(
                        reader.line_num, "households", f"{row[i_hh]!r} is not a positive number"
                    )
                    continue
                line = join(pick(row) + tail)
                # COPY text format: escape the rare values holding a backslash, tab or newline
                if line.count("\t") != sep_count or "\\" in line or "\n" in line or "\r" in line:
                    line = join(v.translate(_ESCAPE) for v in pick(row) + tail)
                add(line)
                pending += 1
                if pending >= CHUNK_ROWS:
                    self.read, self.filtered = read, filtered
                    yield self._flush(buf, pending)
                    buf.clear()
                    pending = 0
        except (UnicodeDecodeError, csv.Error, EOFError, OSError) as exc:
            raise reader.explain(exc) from None
        self.read, self.filtered = read, filtered
        if pending:
            yield self._flush(buf, pending)

    def _bad_number(self, line: int, num: str) -> None:
        if num == BAL_NO_NUMBER:
            self.log.skip(line, "numero", "named place without a number (BAL 99999)")
        elif num == "":
            self.log.reject(line, "numero", "empty house number")
        else:
            self.log.reject(line, "numero", f"{num!r} is not a house number")

    def _flush(self, buf: list[str], pending: int) -> bytes:
        self.sent += pending
        self.progress.update(self.inp.position, self.read)
        if self.fault is not None:
            self.fault(self.sent)
        buf.append("")
        return "\n".join(buf).encode()


async def _aiter(gen):
    for chunk in gen:
        yield chunk
        await asyncio.sleep(0)


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
       c.conname AS constraint, pg_get_constraintdef(c.oid) AS constraintdef
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = 'address'::regclass AND NOT x.indisprimary
ORDER BY i.relname
"""
DEFER_MIN_ROWS = 200_000
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
    """Drop address's secondary indexes (not the primary key); return the SQL to rebuild them.

    Done inside the import's transaction: a failure restores them with everything else. The
    table is locked (ACCESS EXCLUSIVE) until the import commits.
    """
    rebuild = []
    for ix in await conn.fetch(SECONDARY_INDEXES):
        if ix["constraint"]:
            try:
                async with conn.transaction():  # savepoint: kept if something depends on it
                    await conn.execute(f'ALTER TABLE address DROP CONSTRAINT "{ix["constraint"]}"')
            except asyncpg.DependentObjectsStillExistError:
                continue
            rebuild.append(
                f'ALTER TABLE address ADD CONSTRAINT "{ix["constraint"]}" {ix["constraintdef"]}'
            )
        else:
            await conn.execute(f'DROP INDEX "{ix["index"]}"')
            rebuild.append(ix["indexdef"])
    return rebuild


async def _load(
    conn: asyncpg.Connection, rows: _Rows, path: Path, communes, defer: bool | None = None
) -> int:
    """COPY the rows; straight into ``address`` on a first load, through a stage otherwise."""
    scope = "source_file = $1" + (" AND code_insee = ANY($2::text[])" if communes else "")
    args = [path.name] + ([sorted(communes)] if communes else [])
    existing = await conn.fetchval(f"SELECT count(*) FROM address WHERE {scope}", *args)
    if existing == 0:
        rebuild = (
            await _drop_secondary_indexes(conn) if await _should_defer(conn, path, defer) else []
        )
        t0 = now()
        await conn.copy_to_table(
            "address", source=_aiter(rows.chunks()), columns=rows.columns(), format="text", null=""
        )
        rows.timings["copy_seconds"] = round(now() - t0, 2)
        if rebuild:
            rows.progress.close()
            t0 = now()
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for sql in rebuild:
                await conn.execute(sql)
            await conn.execute("ANALYZE address")
            rows.timings["index_rebuild_seconds"] = round(now() - t0, 2)
            rows.timings["indexes_rebuilt"] = len(rebuild)
        return rows.sent
    # Replace the same source: update doors in place (stable ids), drop the ones gone.
    await conn.execute(
        "CREATE TEMP TABLE address_stage (LIKE address INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.execute("ALTER TABLE address_stage DROP COLUMN geom, DROP COLUMN id")
    await conn.copy_to_table(
        "address_stage",
        source=_aiter(rows.chunks()),
        columns=rows.columns(),
        format="text",
        null="",
    )
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
    return rows.sent


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
