"""Exports of priority zones: district polygons with rank, score, contributions and aggregates.

One table is built (``priority_zones_frame``) and written to every format from it, so that the
suppression decided by app.disclosure (every count hidden there, or public and below k, blank
with a ``<count>_suppressed`` flag) is the same in GeoJSON, GeoPackage, Parquet, CSV and HTML.
Door points are never part of an export.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
import uuid
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.csvsafe import frame_to_csv
from app.disclosure import COUNT_FACTORS, COUNTS, INTEGER_COUNTS, apply_k
from app.errors import Conflict, InvalidInput
from app.i18n import _, number
from app.services.ranking import service as rk

FORMATS = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


_GEOMS = text(
    "SELECT code, ST_AsBinary(geom) AS wkb FROM district WHERE code = ANY (CAST(:codes AS text[]))"
)


def weighted_factors(meta: dict[str, Any]) -> list[str]:
    """The factors with a weight (each gets a ``c_<factor>`` contribution column)."""
    return [f["name"] for f in meta["factors"] if f["weight"]]


def zone_columns(weighted: list[str]) -> list[str]:
    """The columns of a priority zone, in order (without the geometry)."""
    columns = ["rank", "code", "name", "commune_code", "commune_name", "score", "damping"]
    columns += ["reasons"] + [f"c_{name}" for name in weighted]
    columns += [f"v_{name}" for name in rk.FACTORS if name not in COUNT_FACTORS]
    for name in COUNTS:
        columns += [name, f"{name}_suppressed"]
    return columns


def zone_record(d: dict[str, Any], weighted: list[str]) -> dict[str, Any]:
    """One ranked district (counts below k already blank) as a flat priority-zone record."""
    rec: dict[str, Any] = {
        "rank": d["rank"],
        "code": d["code"],
        "name": d["name"],
        "commune_code": d["commune_code"],
        "commune_name": d["commune_name"],
        "score": round(d["score"], 6),
        "damping": round(d["damping"], 6),
        "reasons": "; ".join(rk.reasons(d)),
    }
    contrib = {c["factor"]: c for c in d["contributions"]}
    for name in weighted:
        c = contrib.get(name)
        rec[f"c_{name}"] = round(c["contribution"], 6) if c else 0.0
    for name in rk.FACTORS:
        if name in COUNT_FACTORS:
            continue  # the count itself is a column below
        value = d["values"].get(name)
        rec[f"v_{name}"] = None if value is None else round(value, 6)
    for name in COUNTS:
        value = d["counts"].get(name)
        if value is not None and name not in INTEGER_COUNTS:
            value = round(value, 1)
        rec[name] = value
        rec[f"{name}_suppressed"] = bool(d["counts"][f"{name}_suppressed"])
    return rec


async def priority_zones_frame(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    *,
    k: int,
    choice: rk.Choice = rk.OWN,
    limit: int | None = None,
    settings: Settings | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The campaign's ranked districts (the first ``limit``, or every district of its
    territory) as one flat table (EPSG:4326), counts below k blank."""
    result = await rk.ranking(
        session, campaign_id, k=k, choice=choice, limit=limit, settings=settings
    )
    if result["empty"] is not None:  # nothing to export: say why, and what to do
        raise Conflict(
            _("Nothing to export: {detail} {action}").format(
                detail=result["empty"]["detail"], action=result["empty"]["action"]
            ),
            extra={"empty": result["empty"]},
        )
    districts = [apply_k(d, k) for d in result["districts"]]
    geoms = dict((await session.execute(_GEOMS, {"codes": [d["code"] for d in districts]})).all())
    weighted = weighted_factors(result)
    frame = pd.DataFrame.from_records(
        [zone_record(d, weighted) for d in districts], columns=zone_columns(weighted)
    )
    # Typed columns even when every value is blank (no side chosen, every count below k): a
    # column of None alone would be written as text and read back as such by GIS tools.
    for column in frame.columns:
        if column in INTEGER_COUNTS:
            frame[column] = frame[column].astype("Int64")
        elif column.startswith(("v_", "c_")) or column in COUNTS:
            frame[column] = frame[column].astype("Float64")
    geometry = [
        shapely.from_wkb(geoms[d["code"]]) if d["code"] in geoms else None for d in districts
    ]
    gdf = gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)
    meta = {
        key: result[key]
        for key in (
            "weights",
            "election",
            "side",
            "factors",
            "rules",
            "k",
            "current_round",
            "territory",
            "total_districts",
        )
    }
    return gdf, meta


def check_format(ext: str) -> str:
    """The media type of an export format; 422 naming the field for an unknown one."""
    if ext not in FORMATS:
        raise InvalidInput(
            _("Unknown export format {ext!r}. Choose one of: {formats}.").format(
                ext=ext, formats=", ".join(FORMATS)
            ),
            field="format",
        )
    return FORMATS[ext]


def _via_file(gdf: gpd.GeoDataFrame, suffix: str, **kwargs: Any) -> bytes:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="porte-export-")
    os.close(fd)
    path = Path(name)
    try:
        path.unlink()
        if suffix == ".parquet":
            gdf.to_parquet(path, index=False)
        else:
            gdf.to_file(path, engine="pyogrio", **kwargs)
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def render(gdf: gpd.GeoDataFrame, meta: dict[str, Any], ext: str, *, title: str) -> bytes:
    """Write the priority-zones table in one format."""
    check_format(ext)
    if ext == "geojson":
        # 7 decimals of a degree = 1 cm: exact enough, and half the size and time of 15 digits.
        return _via_file(
            gdf, ".geojson", driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 7}
        )
    if ext == "gpkg":
        return _via_file(gdf, ".gpkg", driver="GPKG", layer="priority_zones")
    if ext == "parquet":
        return _via_file(gdf, ".parquet")
    if ext == "csv":
        frame = pd.DataFrame(gdf.drop(columns="geometry"))
        frame["wkt"] = gdf.geometry.to_wkt(rounding_precision=7)
        return frame_to_csv(frame)  # no cell of a district's name can run as a formula
    return html_map(gdf, meta, title=title).encode()


# ---------------------------------------------------------------- HTML (folium, offline)
@cache
def _leaflet_assets() -> tuple[str, str]:
    base = resources.files("xstatic.pkg.leaflet") / "data"
    return (base / "leaflet.js").read_text(), (base / "leaflet.css").read_text()


# Served with the HTML export (app/routers/exports.py): scripts and styles of the file itself
# only, in a sandbox without allow-same-origin, nothing fetched, no form, not framed.
HTML_EXPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)
PALETTE = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")  # low -> high priority


def _bins(scores: pd.Series) -> list[float]:
    qs = scores.quantile([0.2, 0.4, 0.6, 0.8]).tolist() if len(scores) else []
    return qs


def html_map(gdf: gpd.GeoDataFrame, meta: dict[str, Any], *, title: str) -> str:
    """A self-contained folium choropleth of the scores (no CDN: Leaflet inlined)."""
    import folium

    data = gdf[gdf.geometry.notna()].copy()
    # A map for the eye: ~1 m simplification and 1e-6 degree grid keep the file small and fast.
    data["geometry"] = shapely.set_precision(
        shapely.simplify(data.geometry.values, 1e-5, preserve_topology=True), 1e-6
    )
    bins = _bins(data["score"])

    def colour(score: float) -> str:
        idx = sum(score > b for b in bins)
        return PALETTE[min(idx, len(PALETTE) - 1)]

    data["fill"] = [colour(s) for s in data["score"]]
    of = number(meta["total_districts"])
    data["explain"] = [
        _("Rank {rank} of {of} - score {score}").format(rank=number(r), of=of, score=number(s, 2))
        + (_(" (x{damping} for coverage)").format(damping=number(d, 2)) if d < 1 else "")
        for r, s, d in zip(data["rank"], data["score"], data["damping"], strict=True)
    ]
    data["why"] = data["reasons"].fillna("").str.replace("; ", "<br>", regex=False)
    data["supporters_txt"] = [
        _("< {k} (hidden)").format(k=meta["k"])
        if hidden
        else ("" if v is None or pd.isna(v) else number(v))
        for v, hidden in zip(data["supporters"], data["supporters_suppressed"], strict=True)
    ]
    keep = ["code", "name", "explain", "why", "supporters_txt", "fill", "geometry"]
    data = data[keep]
    if len(data):
        minx, miny, maxx, maxy = data.total_bounds
        location = [(miny + maxy) / 2, (minx + maxx) / 2]
    else:
        location, (minx, miny, maxx, maxy) = [46.6, 2.4], (-5, 41, 10, 51)
    m = folium.Map(location=location, zoom_start=13, tiles=None, control_scale=True)
    m.default_js, m.default_css = [], []  # no CDN: Leaflet is inlined below
    js, css = _leaflet_assets()
    root = m.get_root()
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js_inline")
    root.header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"), name="title")
    folium.GeoJson(
        json.loads(data.to_json(na="null")),
        name=_("Priority zones"),
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#333333",
            "weight": 1,
            "fillOpacity": 0.75,
        },
        highlight_function=lambda f: {"weight": 3},
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", "explain", "why", "supporters_txt"],
            aliases=[
                _("District"),
                _("Name"),
                _("Score"),
                _("Why (largest contributions)"),
                _("Supporters"),
            ],
            sticky=True,
        ),
    ).add_to(m)
    if len(data):
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    root.html.add_child(folium.Element(_legend(bins, meta)), name="legend")
    return root.render()


def _legend(bins: list[float], meta: dict[str, Any]) -> str:
    edges = [html.escape(_("lowest"))] + [number(b, 2) for b in bins]
    above = html.escape(_("score >"))
    rows = "".join(
        f'<div><span style="background:{c};display:inline-block;width:14px;height:14px;'
        f'border:1px solid #333;margin-right:6px"></span>{above} {e}</div>'
        if i
        else f'<div><span style="background:{c};display:inline-block;width:14px;height:14px;'
        f'border:1px solid #333;margin-right:6px"></span>{e}</div>'
        for i, (c, e) in enumerate(zip(PALETTE, edges, strict=False))
    )
    weights = ", ".join(
        f"{html.escape(_(rk.FACTORS[n].label) if n in rk.FACTORS else n)} "
        f"{'+' if w >= 0 else '-'}{number(abs(w), 2)}"
        for n, w in meta["weights"].items()
    )
    absent = "; ".join(
        f"{html.escape(f['label'])}: {html.escape(f['reason'] or '')}"
        for f in meta["factors"]
        if f["status"] == "absent" and f["weight"]
    )
    election = meta["election"]["name"] or _("none")
    heading = html.escape(_("Priority score")) + " " + html.escape(_("(darker = visit first)"))
    return (
        '<div id="porte-legend" style="position:fixed;bottom:20px;left:20px;z-index:1000;'
        "background:white;padding:8px 10px;border:1px solid #999;font:12px sans-serif;"
        'max-width:320px">'
        f"<b>{heading}</b>"
        + rows
        + "<div style='margin-top:6px'>"
        + html.escape(_("Weights:"))
        + f" {weights}<br>"
        + html.escape(_("Election:"))
        + f" {html.escape(election)}"
        + (f"<br>{html.escape(_('Left out:'))} {absent}" if absent else "")
        + "<br>"
        + html.escape(_("Counts below {k} are hidden.").format(k=meta["k"]))
        + "</div></div>"
    )
