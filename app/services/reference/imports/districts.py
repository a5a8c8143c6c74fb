"""Polling-station (or IRIS) polygons from GeoJSON or GeoPackage into ``district``.

Any CRS is accepted and reprojected (to EPSG:4326 and EPSG:3035); coordinates outside the declared
CRS's area of use refuse the import (the CRS is wrong). Invalid polygons are repaired (and listed
in the report) or, when nothing polygonal survives, rejected with their reason. Re-importing the
same file updates its districts in place and removes those no longer in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from app.i18n import N_, _
from app.services.reference.imports.common import (
    ImportReport,
    ReferenceImport,
    RejectLog,
    RunOptions,
    check_file,
    fail,
    pick_field,
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


def _check_crs(path: Path, crs, bounds) -> None:
    """Refuse coordinates that cannot be in the declared CRS (a mislabelled file)."""
    import math

    from pyproj import Transformer

    xmin, ymin, xmax, ymax = bounds
    if crs.is_geographic:
        if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
            raise fail(
                path,
                _(
                    "unexpected CRS: the coordinates {box} are not longitudes/latitudes although "
                    "the file declares {crs}. Pass --crs with the real CRS (e.g. EPSG:2154)."
                ).format(
                    box=f"({xmin:.0f}, {ymin:.0f}) … ({xmax:.0f}, {ymax:.0f})", crs=crs.to_string()
                ),
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
            _(
                "unexpected CRS: the coordinates {box} lie outside the area of use of the "
                "declared {crs} ({area}). Pass --crs with the file's real CRS."
            ).format(
                box=f"({xmin:g}, {ymin:g}) … ({xmax:g}, {ymax:g})",
                crs=crs.to_string(),
                area=aou.name if aou else _("unknown"),
            ),
        )


BATCH = 2_000  # features read, checked and sent at once (bounded memory at any file size)


def _open(path: Path, layer: str | None) -> dict:
    """The layer's fields, CRS, feature count and extent, without reading the features."""
    import pyogrio

    try:
        return pyogrio.read_info(
            path, layer=layer, force_feature_count=True, force_total_bounds=True
        )
    except Exception as exc:  # pyogrio's DataSourceError & co.
        raise fail(
            path, _("cannot be read as GeoJSON or GeoPackage ({error}).").format(error=exc)
        ) from None


def _polygonal(g, line: int, log: RejectLog, report: ImportReport):
    """The feature's geometry as a polygon or multipolygon (repaired if invalid), or None when
    it is rejected (logged)."""
    import shapely

    gtype = g.geom_type
    if gtype not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        log.reject(line, "geometry", _("a {type} is not a polygon").format(type=gtype))
        return None
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
            log.reject(
                line, "geometry", _("invalid geometry, cannot be repaired: {why}").format(why=why)
            )
            return None
        log.note(
            line, "geometry", "repaired", _("invalid geometry repaired: {why}").format(why=why)
        )
        report.details["repaired"] = report.details.get("repaired", 0) + 1
        return shapely.MultiPolygon(parts)
    if gtype == "GeometryCollection":
        parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
        if not parts:
            log.reject(line, "geometry", _("the collection holds no polygon"))
            return None
        return shapely.MultiPolygon(parts)
    return g


async def import_districts(
    owner_url: str,
    path: Path | str,
    *,
    layer: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    kind: str = "bureau_de_vote",
    crs: str | None = None,
    **options: Unpack[RunOptions],
) -> ImportReport:
    """Import district polygons (GeoJSON/GeoPackage, any CRS) in one transaction.

    The features are read in batches of ``BATCH`` (Arrow, through GDAL), checked and sent with
    COPY as they come: memory does not grow with the file (69,000 national polling stations).
    """
    path = Path(path)
    with ReferenceImport("districts", path, **options) as run:
        if kind not in ("bureau_de_vote", "iris"):
            raise fail(path, _("--kind {kind!r} must be bureau_de_vote or iris.").format(kind=kind))
        layout = _layout(path, layer, code_field, name_field, crs)
        run.start_progress(layout.total)
        counter = {"loaded": 0}
        records = _records(path, layer, layout, run, counter)
        async with run.transaction(owner_url) as conn:
            await conn.execute(CREATE_STAGE)
            await conn.copy_records_to_table("district_stage", records=records)
            run.progress_finished()
            run.check_rejects()
            if not counter["loaded"]:
                raise fail(path, _("no district to load: every feature was rejected."))
            await conn.execute(
                "DELETE FROM district d WHERE d.source_file = $1 AND NOT EXISTS"
                " (SELECT 1 FROM district_stage s WHERE s.code = d.code)",
                path.name,
            )
            await conn.execute(UPSERT, kind, path.name)
            empty = await conn.fetchval("SELECT count(*) FROM district WHERE ST_IsEmpty(geom)")
            if empty:
                raise fail(
                    path,
                    _("{n} district(s) became empty after reprojection.").format(n=empty),
                )
            report = run.report
            run.counted(loaded=counter["loaded"])
            report.details.update(crs=layout.crs.to_string(), code_field=layout.fields[0])
            if report.details.get("repaired"):
                repaired = report.details["repaired"]
                report.notes.append(_("{n} invalid geometries were repaired.").format(n=repaired))
            await run.record(conn, source=kind)
    return run.report


@dataclass
class _Layout:
    """What the file holds: feature count, the fields used (code, name, commune code, commune
    name; None when absent), its CRS and EPSG code."""

    total: int
    fields: tuple[str, str | None, str | None, str | None]
    crs: Any
    epsg: int


def _layout(
    path: Path,
    layer: str | None,
    code_field: str | None,
    name_field: str | None,
    crs: str | None,
) -> _Layout:
    """Open the layer and find its fields and CRS (``--crs`` overrides the declared one);
    refuse a file without features, code field or usable CRS."""
    from pyproj import CRS

    check_file(path)
    info = _open(path, layer)
    total = int(info.get("features") or 0)
    if total <= 0:
        raise fail(path, _("the layer has no features."))
    columns = [str(c) for c in info["fields"]]
    code_col = pick_field(columns, code_field, CODE_FIELDS, path, N_("code"))
    if code_col is None:
        raise fail(
            path,
            _(
                "no code field found (tried {tried}); the fields are {fields}. Name it with "
                "--code-field."
            ).format(tried=", ".join(CODE_FIELDS), fields=", ".join(columns)),
        )
    name_col = pick_field(columns, name_field, NAME_FIELDS, path, N_("name"))
    commune_col = pick_field(columns, None, COMMUNE_FIELDS, path, N_("commune"))
    commune_name_col = pick_field(columns, None, COMMUNE_NAME_FIELDS, path, N_("commune name"))
    declared = info.get("crs")
    file_crs = (
        CRS.from_user_input(crs) if crs else CRS.from_user_input(declared) if declared else None
    )
    if file_crs is None:
        raise fail(path, _("the file declares no CRS. Pass --crs (e.g. EPSG:2154)."))
    epsg = file_crs.to_epsg()
    if epsg is None:
        raise fail(
            path,
            _("the CRS {crs} has no EPSG code; pass --crs.").format(crs=file_crs.to_string()),
        )
    bounds = info.get("total_bounds")
    if bounds is not None and all(b == b for b in bounds):  # NaN: no geometry at all
        _check_crs(path, file_crs, bounds)
    return _Layout(total, (code_col, name_col, commune_col, commune_name_col), file_crs, epsg)


async def _records(
    path: Path, layer: str | None, layout: _Layout, run: ReferenceImport, counter: dict
) -> AsyncIterator[tuple]:
    """The stage's records, batch by batch (``BATCH`` features read at once)."""
    import numpy as np
    import shapely
    from pyogrio.raw import open_arrow

    code_col, name_col, commune_col, commune_name_col = layout.fields
    wanted = [c for c in layout.fields if c]
    epsg, log, report = layout.epsg, run.log, run.report
    seen: dict[str, int] = {}  # code -> feature number (69,000 national codes: a few MB)
    line = 0
    with ExitStack() as stack:
        try:
            meta, reader = stack.enter_context(
                open_arrow(path, layer=layer, columns=wanted, use_pyarrow=True, batch_size=BATCH)
            )
        except Exception as exc:  # pyogrio's DataSourceError & co.
            raise fail(
                path, _("cannot be read as GeoJSON or GeoPackage ({error}).").format(error=exc)
            ) from None
        geom_name = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            data = batch.to_pydict()
            geoms = shapely.from_wkb(np.array(data[geom_name], dtype=object))
            present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
            for i in range(batch.num_rows):
                line += 1  # feature number
                report.rows_read += 1
                raw = data[code_col][i]
                code = str(raw).strip() if raw is not None else ""
                if not code:
                    log.reject(line, code_col, _("empty district code"))
                    continue
                if code in seen:
                    raise fail(
                        path,
                        _(
                            "duplicated district code {code!r} in features {first} and {line}. "
                            "Each district must appear once (check --code-field)."
                        ).format(code=code, first=seen[code], line=line),
                        line=line,
                    )
                seen[code] = line
                if not present[i]:
                    log.reject(line, "geometry", _("no geometry"))
                    continue
                g = _polygonal(geoms[i], line, log, report)
                if g is None:
                    continue
                wkb = shapely.to_wkb(shapely.set_srid(g, epsg), include_srid=True)
                commune_raw = data[commune_col][i] if commune_col else None
                commune = (
                    str(commune_raw)
                    if commune_raw is not None
                    else code.split("_")[0]
                    if "_" in code
                    else None
                )
                name = data[name_col][i] if name_col else None
                commune_name = data[commune_name_col][i] if commune_name_col else None
                counter["loaded"] += 1
                yield (
                    line,
                    code,
                    str(name) if name is not None else None,
                    commune,
                    str(commune_name) if commune_name is not None else None,
                    wkb,
                )
            run.progress(line, line)
