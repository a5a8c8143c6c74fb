"""Polling-station (or IRIS) polygons from GeoJSON or GeoPackage into ``district``.

Any CRS is accepted and reprojected (to EPSG:4326 and EPSG:3035); coordinates outside the declared
CRS's area of use refuse the import (the CRS is wrong). Invalid polygons are repaired (and listed
in the report) or, when nothing polygonal survives, rejected with their reason. Re-importing the
same file updates its districts in place and removes those no longer in it.
"""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg

from app.services.reference.imports.common import (
    ImportReport,
    Progress,
    RejectLog,
    connect,
    fail,
    now,
    record_run,
    translate_db_error,
)

CODE_FIELDS = ["codeBureauVote", "code_bv", "code_bureau_vote", "code", "CODE_IRIS", "code_iris"]
NAME_FIELDS = ["nomBureauVote", "libelle", "nom", "name", "NOM_IRIS", "nom_iris"]
COMMUNE_FIELDS = ["codeCommune", "code_commune", "INSEE_COM", "insee_com", "commune_code"]
COMMUNE_NAME_FIELDS = ["nomCommune", "nom_commune", "NOM_COM", "nom_com", "commune_name"]

CREATE_STAGE = """
CREATE TEMP TABLE district_stage (
    line integer, code text, name text, commune_code text, commune_name text, wkb bytea
) ON COMMIT DROP
"""
UPSERT = """
INSERT INTO district (code, kind, name, commune_code, commune_name, geom, geom_3035, source_file)
SELECT code, $1, name, commune_code, commune_name, g, ST_Multi(ST_Transform(g, 3035)), $2
FROM (
    SELECT s.*, ST_Multi(ST_CollectionExtract(ST_MakeValid(
               ST_Transform(ST_GeomFromEWKB(wkb), 4326)), 3)) AS g
    FROM district_stage s
) x
ON CONFLICT (code) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, commune_code = excluded.commune_code,
    commune_name = excluded.commune_name, geom = excluded.geom, geom_3035 = excluded.geom_3035,
    source_file = excluded.source_file
"""


def _pick(columns: list[str], wanted: str | None, candidates: list[str], path: Path, what: str):
    lower = {c.lower(): c for c in columns}
    if wanted:
        if wanted.lower() not in lower:
            raise fail(
                path,
                f"the {what} field {wanted!r} is not in the file (fields: {', '.join(columns)}).",
            )
        return lower[wanted.lower()]
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def _check_crs(path: Path, crs, bounds) -> None:
    """Refuse coordinates that cannot be in the declared CRS (a mislabelled file)."""
    import math

    from pyproj import Transformer

    xmin, ymin, xmax, ymax = bounds
    if crs.is_geographic:
        if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
            raise fail(
                path,
                f"unexpected CRS: the coordinates ({xmin:.0f}, {ymin:.0f}) … ({xmax:.0f}, "
                f"{ymax:.0f}) are not longitudes/latitudes although the file declares "
                f"{crs.to_string()}. Pass --crs with the real CRS (e.g. EPSG:2154).",
            )
        return
    aou = crs.area_of_use
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lons, lats = tr.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
    finite = all(math.isfinite(v) for v in [*lons, *lats])
    inside = aou is None or (
        finite
        and aou.west - 1 <= min(lons)
        and max(lons) <= aou.east + 1
        and aou.south - 1 <= min(lats)
        and max(lats) <= aou.north + 1
    )
    if not inside:
        raise fail(
            path,
            f"unexpected CRS: the coordinates ({xmin:g}, {ymin:g}) … ({xmax:g}, {ymax:g}) lie "
            f"outside the area of use of the declared {crs.to_string()}"
            f" ({aou.name if aou else 'unknown'})."
            " Pass --crs with the file's real CRS.",
        )


async def import_districts(
    owner_url: str,
    path: Path | str,
    *,
    layer: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    kind: str = "bureau_de_vote",
    crs: str | None = None,
    max_rejects: int = 0,
    report_path: Path | None = None,
    quiet: bool = False,
) -> ImportReport:
    """Import district polygons (GeoJSON/GeoPackage, any CRS) in one transaction."""
    import numpy as np
    import pyogrio
    import shapely
    from pyproj import CRS

    path = Path(path)
    started_wall, t0 = time.time(), now()
    report = ImportReport("districts", path, path.name)
    log = RejectLog(path, report_path)
    if kind not in ("bureau_de_vote", "iris"):
        raise fail(path, f"--kind {kind!r} must be bureau_de_vote or iris.")
    try:
        if not path.exists():
            raise fail(path, "no such file.")
        if path.stat().st_size == 0:
            raise fail(path, "the file is empty (0 bytes).")
        try:
            df = pyogrio.read_dataframe(path, layer=layer)
        except Exception as exc:  # pyogrio's DataSourceError & co.
            raise fail(path, f"cannot be read as GeoJSON or GeoPackage ({exc}).") from None
        if len(df) == 0:
            raise fail(path, "the layer has no features.")
        columns = [c for c in df.columns if c != "geometry"]
        code_col = _pick(columns, code_field, CODE_FIELDS, path, "code")
        if code_col is None:
            raise fail(
                path,
                f"no code field found (tried {', '.join(CODE_FIELDS)}); the fields are "
                f"{', '.join(columns)}. Name it with --code-field.",
            )
        name_col = _pick(columns, name_field, NAME_FIELDS, path, "name")
        commune_col = _pick(columns, None, COMMUNE_FIELDS, path, "commune")
        commune_name_col = _pick(columns, None, COMMUNE_NAME_FIELDS, path, "commune name")

        file_crs = CRS.from_user_input(crs) if crs else df.crs
        if file_crs is None:
            raise fail(path, "the file declares no CRS. Pass --crs (e.g. EPSG:2154).")
        epsg = file_crs.to_epsg()
        if epsg is None:
            raise fail(path, f"the CRS {file_crs.to_string()} has no EPSG code; pass --crs.")
        geoms = np.asarray(df.geometry.values, dtype=object)
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if present.any():
            _check_crs(path, file_crs, shapely.total_bounds(geoms[present]))

        records = []
        seen: dict[str, int] = {}
        progress = Progress(f"districts {path.name}", len(df), quiet)
        for i, rec in enumerate(
            df[[c for c in (code_col, name_col, commune_col, commune_name_col) if c]].to_dict(
                "records"
            )
        ):
            line = i + 1  # feature number
            report.rows_read += 1
            code = str(rec[code_col] or "").strip() if rec[code_col] is not None else ""
            if not code:
                log.reject(line, code_col, "empty district code")
                continue
            if code in seen:
                raise fail(
                    path,
                    f"duplicated district code {code!r} in features {seen[code]} and {line}. "
                    "Each district must appear once (check --code-field).",
                    line=line,
                )
            seen[code] = line
            g = geoms[i]
            if not present[i]:
                log.reject(line, "geometry", "no geometry")
                continue
            gtype = g.geom_type
            if gtype not in ("Polygon", "MultiPolygon", "GeometryCollection"):
                log.reject(line, "geometry", f"a {gtype} is not a polygon")
                continue
            if not g.is_valid:
                why = shapely.is_valid_reason(g)
                fixed = shapely.make_valid(g)
                parts = []
                for p in shapely.get_parts(fixed):
                    if p.geom_type == "MultiPolygon":
                        parts.extend(shapely.get_parts(p))
                    elif p.geom_type == "Polygon":
                        parts.append(p)
                if not parts or sum(p.area for p in parts) == 0:
                    log.reject(line, "geometry", f"invalid geometry, cannot be repaired: {why}")
                    continue
                g = shapely.MultiPolygon(parts)
                log.note(line, "geometry", "repaired", f"invalid geometry repaired: {why}")
                report.details["repaired"] = report.details.get("repaired", 0) + 1
            elif gtype == "GeometryCollection":
                parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
                if not parts:
                    log.reject(line, "geometry", "the collection holds no polygon")
                    continue
                g = shapely.MultiPolygon(parts)
            wkb = shapely.to_wkb(shapely.set_srid(g, epsg), include_srid=True)
            commune = (
                str(rec[commune_col])
                if commune_col and rec[commune_col] is not None
                else code.split("_")[0]
                if "_" in code
                else None
            )
            records.append(
                (
                    line,
                    code,
                    str(rec[name_col]) if name_col and rec[name_col] is not None else None,
                    commune,
                    str(rec[commune_name_col])
                    if commune_name_col and rec[commune_name_col] is not None
                    else None,
                    wkb,
                )
            )
        progress.close(len(df))
        log.check(max_rejects)
        if not records:
            raise fail(path, "no district to load: every feature was rejected.")
        try:
            async with connect(owner_url) as conn, conn.transaction():
                await conn.execute(CREATE_STAGE)
                await conn.copy_records_to_table("district_stage", records=records)
                await conn.execute(
                    "DELETE FROM district d WHERE d.source_file = $1 AND NOT EXISTS"
                    " (SELECT 1 FROM district_stage s WHERE s.code = d.code)",
                    path.name,
                )
                await conn.execute(UPSERT, kind, path.name)
                empty = await conn.fetchval("SELECT count(*) FROM district WHERE ST_IsEmpty(geom)")
                if empty:
                    raise fail(path, f"{empty} district(s) became empty after reprojection.")
                report.rows_loaded = len(records)
                report.rows_skipped, report.rows_rejected = log.skipped, log.rejected
                report.details.update(crs=file_crs.to_string(), code_field=code_col)
                if report.details.get("repaired"):
                    report.notes.append(
                        f"{report.details['repaired']} invalid geometries were repaired."
                    )
                await record_run(conn, report, source=kind, started=started_wall)
        except asyncpg.PostgresError as exc:
            raise translate_db_error(path, exc) from None
    finally:
        report.report_path = log.close()
    report.seconds = now() - t0
    return report
