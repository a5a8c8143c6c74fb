"""Legislative constituencies (circonscriptions législatives) into ``constituency``.

One command reads the three shapes the public sources come in; what the file holds decides:

- contours, one feature per constituency (GeoJSON, GeoPackage, Shapefile; any CRS): data.gouv.fr
  *Contours géographiques des circonscriptions législatives* (``codeCirconscription``,
  ``nomCirconscription``, ``codeDepartement``), or older ones (Toxicode ``code_circonscription``,
  Sciences Po ``ID``). A district belongs to the constituency holding its point on surface;
- polling stations with their constituency (a field like ``codeBureauVote`` beside the code):
  the *Contours des bureaux de vote* file and its CSV (every station's ``codeCirconscription``):
  exact, Paris and Marseille included;
- communes with their constituency (a 5-character INSEE code, or the Ministry's 3-digit commune
  number beside the département): the Ministry of the Interior's correspondence table. A commune
  listed under several constituencies (split cities) places none of its districts: those need
  one of the two other files.

Codes are stored as ``92-13`` (``9213``, ``92013``, ``92-13``, ``2A01``, ``971-01`` are read). The
import is one transaction; re-importing a file replaces what it said; each district's
constituency is resolved again at the end (``porte_refresh_constituencies()``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Unpack

import asyncpg

from app.i18n import N_, _, number
from app.services.reference.codes import normalise_constituency
from app.services.reference.imports.common import (
    ImportReport,
    ReferenceImport,
    RejectLog,
    RunOptions,
    check_file,
    fail,
    pick_field,
)

CODE_FIELDS = [
    "codeCirconscription",
    "code_circonscription",
    "code_circo",
    "codecirco",
    "circonscription",
    "code circ legislative",
    "circ_leg_2012",
    "id_circo",
    "ID",
]
# What a file lists, as the import's summary says it.
CONTENT = {
    None: N_("contours"),
    "district": N_("polling stations"),
    "commune": N_("communes"),
}
NAME_FIELDS = ["nomCirconscription", "nom_circonscription", "libelle", "nom", "name"]
DEPARTEMENT_FIELDS = [
    "codeDepartement",
    "code_departement",
    "code_dpt",
    "code dpt",
    "code_dept",
    "departement",
    "dep",
]
STATION_FIELDS = ["codeBureauVote", "code_bv", "code_bureau_vote"]
COMMUNE_FIELDS = ["codeCommune", "code_commune", "code_insee", "insee_com", "code commune", "com"]
GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")

_STAGE = """
CREATE TEMP TABLE constituency_stage (
    code text, departement text, number smallint, name text, wkb bytea
) ON COMMIT DROP
"""
_PART_STAGE = """
CREATE TEMP TABLE constituency_part_stage (constituency_code text, level text, code text)
ON COMMIT DROP
"""
_UPSERT = """
INSERT INTO constituency (code, departement, number, name, geom, source_file)
SELECT code, departement, number, name,
       CASE WHEN wkb IS NOT NULL THEN ST_Multi(ST_CollectionExtract(ST_MakeValid(
           ST_Transform(ST_GeomFromEWKB(wkb), 4326)), 3)) END,
       $1
FROM constituency_stage
ON CONFLICT (code) DO UPDATE SET
    departement = excluded.departement, number = excluded.number,
    name = coalesce(excluded.name, constituency.name),
    geom = coalesce(excluded.geom, constituency.geom),
    source_file = excluded.source_file, loaded_at = now()
"""


def _read(path: Path, layer: str | None, delimiter: str | None, encoding: str) -> Any:
    """The file as a (Geo)DataFrame: geographic formats with pyogrio, CSV with pandas."""
    import pandas as pd
    import pyogrio

    if path.suffix.lower() in GEO_SUFFIXES:
        try:
            return pyogrio.read_dataframe(path, layer=layer)
        except Exception as exc:  # pyogrio's DataSourceError & co.
            raise fail(
                path,
                _("cannot be read as GeoJSON, GeoPackage or Shapefile ({error}).").format(
                    error=exc
                ),
            ) from None
    try:
        return pd.read_csv(
            path,
            sep=delimiter,
            engine="python",
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
        )
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise fail(
            path,
            _("cannot be read as CSV ({error}). Try --delimiter or --encoding.").format(error=exc),
        ) from None


def _code(raw: Any, dep: str | None) -> str | None:
    """The normalised code; a bare number (1-2 digits) is completed with the département."""
    text = str(raw or "").strip()
    if text.isdigit() and len(text) <= 2 and dep:
        text = f"{dep}-{text}"
    return normalise_constituency(text)


def _commune(raw: Any, dep: str | None) -> str | None:
    """A 5-character INSEE code (the Ministry's 3-digit number is completed by its département)."""
    text = str(raw or "").strip().upper()
    if len(text) == 3 and text.isdigit() and dep:
        text = dep[:2] + text
    if len(text) == 4 and text.isdigit():
        text = "0" + text  # read as a number somewhere: 1004 for 01004
    return text if len(text) == 5 else None


async def import_constituencies(
    owner_url: str,
    path: Path | str,
    *,
    layer: str | None = None,
    code_field: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    crs: str | None = None,
    **options: Unpack[RunOptions],
) -> ImportReport:
    """Import constituency contours or memberships (stations, communes) in one transaction."""
    path = Path(path)
    with ReferenceImport("constituencies", path, **options) as run:
        check_file(path)
        df = _read(path, layer, delimiter, encoding)
        if len(df) == 0:
            raise fail(path, _("the file has no rows."))
        run.start_progress(len(df))
        layout = _layout(df, code_field, path)
        code_col, level = layout["code_col"], layout["level"]
        constituencies, parts = _rows(df, run.report, run.log, layout, crs, path)
        run.progress_finished(rows=run.report.rows_read)
        run.check_rejects()
        if not constituencies:
            raise fail(path, _("no constituency to load: every row was rejected."))
        async with run.transaction(owner_url) as conn:
            await _store(conn, path, constituencies, parts, level)
            run.counted(loaded=run.report.rows_read - run.log.rejected - run.log.skipped)
            mapped = await conn.fetchval("SELECT porte_refresh_constituencies()")
            run.report.details.update(
                code_field=code_col,
                content=level or "contours",
                constituencies=len(constituencies),
                districts_placed=mapped,
            )
            run.report.notes.append(
                _(
                    "{n} constituencies ({content}); {placed} loaded districts placed in a "
                    "constituency."
                ).format(
                    n=number(len(constituencies)),
                    content=_(CONTENT[level]),
                    placed=number(mapped or 0),
                )
            )
            await run.record(conn, source=level or "contours")
    return run.report


def _layout(df: Any, code_field: str | None, path: Path) -> dict[str, Any]:
    """Which columns hold what, and what the file lists: contours (level None), polling
    stations ("district") or communes ("commune")."""
    columns = [c for c in df.columns if c != "geometry"]
    code_col = pick_field(columns, code_field, CODE_FIELDS, path, N_("code"))
    if code_col is None:
        raise fail(
            path,
            _(
                "no constituency code field found (tried {tried}); the fields are {fields}. Name "
                "it with --code-field."
            ).format(tried=", ".join(CODE_FIELDS), fields=", ".join(columns)),
        )
    station_col = pick_field(columns, None, STATION_FIELDS, path, N_("polling station"))
    commune_col = pick_field(columns, None, COMMUNE_FIELDS, path, N_("commune"))
    has_geometry = "geometry" in getattr(df, "columns", []) and station_col is None
    level = "district" if station_col else None if has_geometry else "commune"
    if level == "commune" and commune_col is None:
        raise fail(
            path,
            _(
                "neither contours (a polygon layer) nor polling stations ({stations}) nor "
                "communes ({communes}) were found beside the code; the fields are {fields}."
            ).format(
                stations=", ".join(STATION_FIELDS),
                communes=", ".join(COMMUNE_FIELDS),
                fields=", ".join(columns),
            ),
        )
    return {
        "code_col": code_col,
        "name_col": pick_field(columns, None, NAME_FIELDS, path, N_("name")),
        "dep_col": pick_field(columns, None, DEPARTEMENT_FIELDS, path, N_("département")),
        "level": level,
        "part_col": station_col or commune_col,
        "has_geometry": has_geometry,
    }


def _rows(
    df: Any,
    report: ImportReport,
    log: RejectLog,
    layout: dict[str, Any],
    crs: str | None,
    path: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """Constituencies (code -> departement, number, name, geometries) and their listed parts."""
    import shapely
    from pyproj import CRS

    code_col, name_col, dep_col = layout["code_col"], layout["name_col"], layout["dep_col"]
    level, part_col, has_geometry = layout["level"], layout["part_col"], layout["has_geometry"]

    epsg = None
    if has_geometry:
        file_crs = CRS.from_user_input(crs) if crs else df.crs
        if file_crs is None or file_crs.to_epsg() is None:
            raise fail(path, _("the file declares no CRS with an EPSG code. Pass --crs."))
        epsg = file_crs.to_epsg()
    out: dict[str, dict[str, Any]] = {}
    parts: dict[str, set[str]] = defaultdict(set)
    records = df.to_dict("records")
    for i, rec in enumerate(records):
        line = i + 1 if has_geometry else i + 2  # feature number / CSV line (after the header)
        report.rows_read += 1
        dep = str(rec[dep_col]).strip().upper() if dep_col and rec.get(dep_col) else None
        if dep and dep.isdigit() and len(dep) == 1:
            dep = "0" + dep
        code = _code(rec.get(code_col), dep)
        if code is None:
            log.reject(
                line,
                code_col,
                _("not a constituency code: {value!r}").format(value=rec.get(code_col)),
            )
            continue
        entry = out.setdefault(
            code,
            {
                "departement": code.split("-")[0],
                "number": int(code.split("-")[1]),
                "name": None,
                "geoms": [],
            },
        )
        if name_col and rec.get(name_col) and not entry["name"]:
            entry["name"] = str(rec[name_col]).strip()
        if has_geometry:
            g = rec.get("geometry")
            if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
                log.reject(line, "geometry", _("no polygon"))
                continue
            entry["geoms"].append(g)
        elif level == "district":
            station = str(rec.get(part_col) or "").strip()
            if not station:
                log.reject(line, part_col or "", _("empty polling-station code"))
                continue
            parts[code].add(station)
        else:
            commune = _commune(rec.get(part_col), dep)
            if commune is None:
                log.reject(
                    line,
                    part_col or "",
                    _("not an INSEE commune code: {value!r}").format(value=rec.get(part_col)),
                )
                continue
            parts[code].add(commune)
    for entry in out.values():
        geoms = entry.pop("geoms")
        entry["wkb"] = (
            shapely.to_wkb(shapely.set_srid(shapely.union_all(geoms), epsg), include_srid=True)
            if geoms
            else None
        )
    return out, parts


async def _store(
    conn: asyncpg.Connection,
    path: Path,
    constituencies: dict[str, dict[str, Any]],
    parts: dict[str, set[str]],
    level: str | None,
) -> None:
    """Replace what this file said before with what it says now."""
    await conn.execute(_STAGE)
    await conn.copy_records_to_table(
        "constituency_stage",
        records=[
            (code, e["departement"], e["number"], e["name"], e["wkb"])
            for code, e in constituencies.items()
        ],
    )
    await conn.execute(
        "DELETE FROM constituency c WHERE c.source_file = $1 AND NOT EXISTS "
        "(SELECT 1 FROM constituency_stage s WHERE s.code = c.code)",
        path.name,
    )
    await conn.execute(_UPSERT, path.name)
    if level is not None:
        await conn.execute(_PART_STAGE)
        await conn.copy_records_to_table(
            "constituency_part_stage",
            records=[(code, level, part) for code, listed in parts.items() for part in listed],
        )
        await conn.execute(
            "DELETE FROM constituency_part p WHERE p.level = $1 AND p.constituency_code IN "
            "(SELECT code FROM constituency_stage)",
            level,
        )
        await conn.execute(
            "INSERT INTO constituency_part (constituency_code, level, code) "
            "SELECT DISTINCT constituency_code, level, code FROM constituency_part_stage"
        )
