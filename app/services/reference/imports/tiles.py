"""INSEE Filosofi 200 m tiles (CSV or GeoPackage, any vintage) into ``insee_tile``.

The square is derived from the tile id (app.geo.insee); when the file carries INSEE's own geometry
(GeoPackage) each square is checked against it. Columns are matched case-insensitively across
vintages (``idcar_200m`` 2019, ``Idcar_200m`` 2017, ``IdINSPIRE`` 2015). Rows are staged, checked
for duplicated ids, then upserted: re-importing the same file replaces its tiles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Unpack

import asyncpg

from app.geo.insee import FILOSOFI_COUNTS, TileIdError, parse_tile_id
from app.i18n import _, number
from app.services.reference.imports.common import (
    Fault,
    ImportReport,
    ReferenceImport,
    RejectLog,
    RunOptions,
    fail,
)
from app.services.reference.imports.csvinput import find_columns, open_csv

COUNTS = FILOSOFI_COUNTS
SPEC: dict[str, list[str]] = {
    "id": ["idcar_200m", "idinspire", "id_inspire", "idcar"],
    "i_est_200": ["i_est_200", "i_est_cr", "i_est"],
    "lcog_geo": ["lcog_geo", "depcom", "lcog"],
    **{c: [c] for c in COUNTS},
}
REQUIRED = ["id", "ind"]
STAGE_COLUMNS = ["line", "id", "east", "north", "size", *COUNTS, "i_est_200", "lcog_geo"]
MAX_SQUARE_MISMATCH_M2 = 1.0

CREATE_STAGE = f"""
CREATE TEMP TABLE tile_stage (
    line integer, id text, east double precision, north double precision,
    size double precision, {", ".join(f"{c} double precision" for c in COUNTS)},
    i_est_200 smallint, lcog_geo text
) ON COMMIT DROP
"""
UPSERT = f"""
INSERT INTO insee_tile (id, geom, {", ".join(COUNTS)}, i_est_200, lcog_geo, source_file)
SELECT id, ST_MakeEnvelope(east, north, east + size, north + size, 3035),
       {", ".join(COUNTS)}, i_est_200, lcog_geo, $1
FROM tile_stage
ON CONFLICT (id) DO UPDATE SET
    geom = excluded.geom, {", ".join(f"{c} = excluded.{c}" for c in COUNTS)},
    i_est_200 = excluded.i_est_200, lcog_geo = excluded.lcog_geo,
    source_file = excluded.source_file
"""


def _num(value, line: int, column: str, log: RejectLog) -> float | None | bool:
    """A count: float, None when empty, False (and a rejected row) when malformed."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return None if value != value else float(value)  # NaN -> NULL
    v = value.strip()
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        try:
            return float(v.replace("\u202f", "").replace(" ", "").replace(",", "."))
        except ValueError:
            log.reject(line, column, _("{value!r} is not a number").format(value=value))
            return False


def _records(
    rows: Iterator[tuple[int, dict[str, object]]], log: RejectLog, counter: dict
) -> Iterator[tuple]:
    for line, values in rows:
        counter["read"] += 1
        raw_id = values.get("id")
        try:
            tile = parse_tile_id(str(raw_id or ""))
        except TileIdError as exc:
            log.reject(line, "id", str(exc))
            continue
        nums = []
        ok = True
        for c in COUNTS:
            v = _num(values.get(c), line, c, log)
            if v is False:
                ok = False
                break
            nums.append(v)
        if not ok:
            continue
        est = values.get("i_est_200")
        try:
            i_est = None if est in (None, "") else int(float(est))  # type: ignore[arg-type]
        except ValueError:
            log.reject(line, "i_est_200", _("{value!r} is not 0 or 1").format(value=est))
            continue
        lcog = values.get("lcog_geo")
        if isinstance(lcog, float) and lcog.is_integer():
            lcog = str(int(lcog))
        counter["sent"] += 1
        yield (
            line,
            tile.id,
            float(tile.east),
            float(tile.north),
            float(tile.size),
            *nums,
            i_est,
            None if lcog in (None, "") else str(lcog),
        )


def _csv_rows(inp, cols: dict[str, int]) -> Iterator[tuple[int, dict[str, object]]]:
    n = len(inp.header)
    for row in inp.reader:
        if not row:
            continue
        if len(row) != n:
            yield inp.reader.line_num, {"id": None, "_fields": len(row)}
            continue
        yield inp.reader.line_num, {k: row[i] for k, i in cols.items()}


def _gpkg_rows(path: Path, layer: str | None, log: RejectLog):
    """Rows of a GeoPackage (or any GDAL layer), streamed in Arrow batches; each square derived
    from an id is checked against the file's own polygon (reprojected). Returns the feature count
    and the rows."""
    import pyogrio
    from pyproj import CRS, Transformer

    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise fail(path, _("cannot be read as a GIS file ({error}).").format(error=exc)) from None
    total = int(info.get("features") or 0)
    if total == 0:
        raise fail(path, _("the layer has no features."))
    header = [str(f) for f in info["fields"]]
    cols = find_columns(path, header, SPEC, REQUIRED, line=None)
    names = {k: header[i] for k, i in cols.items()}
    squares = None
    if info.get("geometry_type") not in (None, "None"):
        if info.get("crs") is None:
            raise fail(path, _("the layer declares no CRS; cannot check the squares."))
        file_crs = CRS.from_user_input(info["crs"])
        squares = _Squares(
            Transformer.from_crs(CRS.from_epsg(3035), file_crs, always_xy=True),
            1e10 if file_crs.is_geographic else 1.0,  # degrees² -> roughly m²
            info["crs"],
        )
    return total, _gpkg_features(path, layer, names, squares, log)


class _Squares:
    """Checks the squares derived from tile ids against the file's polygons (in its CRS)."""

    def __init__(self, to_file: Any, scale: float, crs: str):
        self.to_file, self.scale, self.crs = to_file, scale, crs

    def mismatch(self, ids: list, wkb: list) -> tuple[Any, Any]:
        """Area (m²) of the difference between each id's square and its polygon, and whether it
        could be measured."""
        import numpy as np
        import shapely

        squares, valid = [], []
        for ident in ids:
            try:
                xs, ys = zip(*parse_tile_id(str(ident)).corners(), strict=True)
                fx, fy = self.to_file.transform(xs, ys)
                squares.append(shapely.Polygon(list(zip(fx, fy, strict=True))))
                valid.append(True)
            except (TileIdError, ValueError):
                squares.append(None)
                valid.append(False)
        geoms = shapely.from_wkb(np.array(wkb, dtype=object))
        ok = np.array(valid) & ~shapely.is_missing(geoms)
        out = np.zeros(len(ids))
        sq = np.array(squares, dtype=object)
        out[ok] = shapely.area(shapely.symmetric_difference(sq[ok], geoms[ok])) * self.scale
        return out, ok


def _gpkg_features(path: Path, layer: str | None, names: dict, squares: _Squares | None, log):
    """(feature number, values) of the layer; a feature whose polygon is not its id's square is
    rejected, and a first batch where none matches refuses the file (wrong CRS)."""
    from pyogrio.raw import open_arrow

    line = 0
    first = True
    with open_arrow(
        path,
        layer=layer,
        columns=list(names.values()),
        read_geometry=squares is not None,
        use_pyarrow=True,
        batch_size=20_000,
    ) as (meta, reader):
        geom_name = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            data = batch.to_pydict()
            if squares is not None:
                mismatch, checked = squares.mismatch(data[names["id"]], data[geom_name])
                if first and checked.any() and (mismatch[checked] > MAX_SQUARE_MISMATCH_M2).all():
                    raise fail(
                        path,
                        _(
                            "none of the squares derived from the tile ids matches the file's "
                            "geometry in its declared CRS ({crs}): the CRS is probably wrong."
                        ).format(crs=squares.crs),
                    )
                first = False
            for i in range(batch.num_rows):
                line += 1
                if squares is not None and mismatch[i] > MAX_SQUARE_MISMATCH_M2:
                    log.reject(
                        line, "geometry",
                        _(
                            "INSEE's geometry differs from the square of its id by {m2} m²"
                        ).format(m2=number(mismatch[i], 1)),
                    )  # fmt: skip
                    continue
                yield line, {k: data[names[k]][i] for k in names}


async def import_tiles(
    owner_url: str,
    path: Path | str,
    *,
    layer: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    fault: Fault = None,
    **options: Unpack[RunOptions],
) -> ImportReport:
    """Import Filosofi tiles from a CSV (.csv/.csv.gz) or a GeoPackage in one transaction."""
    path = Path(path)
    gis = path.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp", ".fgb")
    with ReferenceImport("tiles", path, **options) as run:
        counter = {"read": 0, "sent": 0}
        if gis:
            if not path.exists():
                raise fail(path, _("no such file."))
            total, rows = _gpkg_rows(path, layer, run.log)
            run.start_progress(total)
            await _load(owner_url, run, _records(rows, run.log, counter), counter, fault)
        else:
            with open_csv(
                path,
                delimiters=[",", ";"],
                delimiter=delimiter,
                encoding=encoding,
                hint_columns=SPEC["id"],
            ) as inp:
                cols = find_columns(path, inp.header, SPEC, REQUIRED)
                rows = _checked_csv_rows(inp, cols, run.log)
                run.start_progress(None)
                await _load(owner_url, run, _records(rows, run.log, counter), counter, fault)
    return run.report


def _checked_csv_rows(inp, cols, log):
    for line, values in _csv_rows(inp, cols):
        if "_fields" in values:
            log.reject(
                line,
                "",
                _("{n} fields instead of {expected}").format(
                    n=values["_fields"], expected=len(inp.header)
                ),
            )
            continue
        yield line, values


async def _load(
    owner_url: str, run: ReferenceImport, records: Iterator[tuple], counter: dict, fault: Fault
) -> None:
    """Stage the records, refuse duplicated ids, replace this file's tiles; report, record."""

    async def batches() -> AsyncIterator[tuple]:
        batch = []
        for rec in records:
            batch.append(rec)
            if len(batch) >= 10_000:
                run.progress(counter["read"], counter["read"])
                for r in batch:
                    yield r
                batch = []
                if fault is not None:
                    fault(counter["sent"])
        for r in batch:
            yield r

    name = run.path.name
    async with run.transaction(owner_url) as conn:
        await conn.execute(CREATE_STAGE)
        await conn.copy_records_to_table("tile_stage", records=batches(), columns=STAGE_COLUMNS)
        run.check_rejects()
        if counter["read"] == 0:
            raise run.fail(_("the file has a header but no rows."), line=2)
        await _refuse_duplicates(conn, run)
        await conn.execute(
            "DELETE FROM insee_tile t WHERE t.source_file = $1 AND NOT EXISTS"
            " (SELECT 1 FROM tile_stage s WHERE s.id = t.id)",
            name,
        )
        await conn.execute(UPSERT, name)
        run.counted(read=counter["read"], loaded=counter["sent"])
        tot = await conn.fetchrow(
            "SELECT count(*) AS n, sum(ind) AS ind, sum(men) AS men,"
            " count(*) FILTER (WHERE i_est_200 = 1) AS imputed"
            " FROM insee_tile WHERE source_file = $1",
            name,
        )
        run.report.notes.append(
            _(
                "{n} tiles from this file: {ind} individuals, {men} households, "
                "{imputed} imputed tiles."
            ).format(
                n=number(tot["n"]),
                ind=number(tot["ind"] or 0, 1),
                men=number(tot["men"] or 0, 1),
                imputed=number(tot["imputed"]),
            )
        )
        await run.record(conn, source="insee")


async def _refuse_duplicates(conn: asyncpg.Connection, run: ReferenceImport) -> None:
    """Each tile appears once in a file: name the first duplicated ids and their lines."""
    dups = await conn.fetch(
        "SELECT id, array_agg(line ORDER BY line) AS lines FROM tile_stage"
        " GROUP BY id HAVING count(*) > 1 ORDER BY min(line) LIMIT 5"
    )
    if dups:
        listed = "; ".join(
            _("{id} on lines {lines}").format(id=d["id"], lines=", ".join(map(str, d["lines"])))
            for d in dups
        )
        raise run.fail(
            _("duplicated tile id(s): {listed}. Each tile must appear once.").format(listed=listed),
            line=dups[0]["lines"][1],
        )
