"""Doors: BAN (Base Adresse Nationale) and BAL (Base Adresse Locale) CSV into ``address``.

Streamed: the file is read in blocks, parsed and checked with pyarrow (row by row where a block
holds quotes, blank lines or wrong field counts, and for every row a vectorised check doubts),
and sent with COPY BINARY in chunks straight into ``address``, whose point is a stored generated
column (no UPDATE pass). A large first load rebuilds the indexes once and adds the geocoder's
counts once (see ``_load``). Re-importing the same source file updates its doors in place (ids
stay stable for turfs and visits) and removes those no longer in it. Real doors replace the
synthetic demo doors of the communes they cover.

The parsing and COPY BINARY encoding are in ``address_rows``, the bulk path (indexes, geocoder
counts) in ``address_bulk``; the run itself is a ``ReferenceImport`` (common.py).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Unpack

import asyncpg

from app.errors import ImportFailed
from app.i18n import _, number
from app.services.reference.imports.address_bulk import (
    ID_SEQUENCE,
    add_geocode_counts,
    drop_geocode_trigger,
    drop_secondary_indexes,
    should_defer,
)
from app.services.reference.imports.address_rows import COMMUNE, AddressRows
from app.services.reference.imports.common import (
    Fault,
    ImportReport,
    ReferenceImport,
    RunOptions,
    fail,
    now,
    translate_db_error,
)
from app.services.reference.imports.csvinput import find_columns, open_csv

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
CHUNK_ROWS = 20_000  # rows per COPY chunk
BLOCK_CHARS = 1 << 20  # ~1 MB of text parsed at once (bounded memory)

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


def parse_communes(value: str | None) -> frozenset[str] | None:
    """``"92002,92014"`` -> a set of INSEE codes (None: no filter); refuse malformed codes."""
    if not value:
        return None
    codes = frozenset(c.strip().upper() for c in value.split(",") if c.strip())
    bad = sorted(c for c in codes if not COMMUNE.match(c))
    if bad:
        raise ImportFailed(
            _("--commune: {codes} is not a 5-character INSEE commune code (e.g. 92002).").format(
                codes=", ".join(bad)
            ),
            extra={"field": "commune"},
        )
    return codes


async def _aiter(gen):
    for chunk in gen:
        yield chunk
        await asyncio.sleep(0)


def _copy_args(rows: AddressRows) -> dict:
    """COPY options for the chunks of ``AddressRows`` (binary)."""
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
        _(
            "not a BAN or BAL address file: expected the BAN columns (id, numero, rep, nom_voie, "
            "code_insee, lon, lat, …) or the BAL columns (cle_interop, numero, suffixe, "
            "voie_nom, commune_insee, long, lat, …). The header has: {shown}."
        ).format(shown=shown),
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
    fault: Fault = None,
    defer_indexes: bool | None = None,
    **options: Unpack[RunOptions],
) -> ImportReport:
    """Import a BAN or BAL CSV (``;``, .csv or .csv.gz) in one transaction; return the report."""
    path = Path(path)
    if isinstance(communes, str) or communes is None:
        communes = parse_communes(communes)
    with (
        ReferenceImport("addresses", path, **options) as run,
        open_csv(
            path,
            delimiters=[";"],
            delimiter=delimiter,
            encoding=encoding,
            hint_columns=["id", "cle_interop"],
        ) as inp,
    ):
        fmt = _detect_format(path, inp.header)
        cols = find_columns(path, inp.header, BAL_SPEC if fmt == "bal" else BAN_SPEC, REQUIRED)
        src = source or fmt
        if src not in ("ban", "bal", "synthetic"):
            raise fail(path, _("source {src!r} must be ban, bal or synthetic.").format(src=src))
        run.start_progress(inp.size)
        rows = AddressRows(inp, cols, fmt, communes, run, src, fault, BLOCK_CHARS, CHUNK_ROWS)

        async def explain(conn: asyncpg.Connection, exc: asyncpg.PostgresError):
            if isinstance(exc, asyncpg.UniqueViolationError):
                return await _duplicate(conn, path, exc, inp.delimiter, encoding)
            return None

        async with run.transaction(owner_url, explain=explain) as conn:
            loaded = await _load(conn, rows, path, communes, defer_indexes)
            await _finish(conn, run, rows, loaded, src)
    return run.report


async def _finish(
    conn: asyncpg.Connection, run: ReferenceImport, rows: AddressRows, loaded: int, src: str
) -> None:
    """Refuse a load with no door; real doors replace the synthetic ones of their communes;
    the report, and the run's record."""
    run.check_rejects()
    if rows.read == 0:
        raise run.fail(_("the file has a header but no rows."), line=2)
    communes = rows.communes
    if loaded == 0:
        raise run.fail(
            (
                _(
                    "no door to load: every row was skipped, rejected or filtered out by "
                    "--commune {communes}."
                )
                if communes
                else _("no door to load: every row was skipped, rejected or filtered out.")
            ).format(communes=",".join(sorted(communes or ())))
        )
    replaced = (
        await conn.execute(
            "DELETE FROM address WHERE source = 'synthetic' AND code_insee = ANY($1::text[])",
            sorted(rows.commune_codes),
        )
        if src != "synthetic"
        else "DELETE 0"
    )
    run.counted(read=rows.read, loaded=loaded)
    report = run.report
    report.rows_filtered = rows.filtered
    report.details["format"] = rows.fmt
    report.details.update(rows.timings)
    report.details["communes"] = sorted(rows.commune_codes)
    n_replaced = int(replaced.split()[-1])
    if n_replaced:
        report.notes.append(
            _("{n} synthetic demo doors of {communes} were replaced by these real doors.").format(
                n=number(n_replaced), communes=", ".join(sorted(rows.commune_codes))
            )
        )
    await run.record(conn, source=src)


async def _load(
    conn: asyncpg.Connection, rows: AddressRows, path: Path, communes, defer: bool | None = None
) -> int:
    """COPY the rows; straight into ``address`` on a first load, through a stage otherwise."""
    scope = "source_file = $1" + (" AND code_insee = ANY($2::text[])" if communes else "")
    args = [path.name] + ([sorted(communes)] if communes else [])
    existing = await conn.fetchval(f"SELECT count(*) FROM address WHERE {scope}", *args)
    if existing == 0:
        bulk = await should_defer(conn, path, defer)
        rebuild, geocode_trigger = [], None
        if bulk:
            # Nobody else writes doors until commit: ids can be numbered here (no nextval per
            # row), the indexes rebuilt once, the geocoder's counts added once.
            await conn.execute("LOCK TABLE address IN ACCESS EXCLUSIVE MODE")
            rebuild = await drop_secondary_indexes(conn)
            geocode_trigger = await drop_geocode_trigger(conn)
            rows.first_id = await conn.fetchval(f"SELECT nextval('{ID_SEQUENCE}')")
        t0 = now()
        await conn.copy_to_table("address", source=_aiter(rows.chunks()), **_copy_args(rows))
        rows.timings["copy_seconds"] = round(now() - t0, 2)
        if rows.first_id is not None and rows.sent:
            await conn.execute(f"SELECT setval('{ID_SEQUENCE}', $1)", rows.first_id + rows.sent - 1)
        if rebuild:
            rows.run.progress_finished(rows.inp.position, rows.read)
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
            await add_geocode_counts(conn, rows.first_id, rows.sent)
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
            _(
                "duplicated id {ident!r} on lines {lines}: every door id must be unique. Remove "
                "the duplicates and import again."
            ).format(ident=ident, lines=", ".join(map(str, lines[:10]))),
            line=lines[1],
        )
    other = await conn.fetchval("SELECT source_file FROM address WHERE ban_id = $1", ident)
    return fail(
        path,
        _(
            "id {ident!r} (line {line}) is already loaded from {other}; a door id may come from "
            "one file only."
        ).format(ident=ident, line=lines[0] if lines else "?", other=other or _("another file")),
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
