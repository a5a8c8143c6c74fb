"""A drawn polygon's check (pure): a GeoJSON Polygon or MultiPolygon (or a Feature of one) in
WGS84 longitude/latitude, closed rings, a bounded number of vertices, a valid shape with an area;
each refusal a 422 saying what is wrong and where. Used by the turfs drawn by an organiser and
by the cut of a drawn area.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.ops import transform
from shapely.validation import explain_validity

from app.errors import InvalidInput
from app.i18n import _

MAX_VERTICES = 5000
WGS84_NAMES = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
    "CRS84",
    "OGC:CRS84",
}


def _crs_name(obj: dict[str, Any]) -> str | None:
    crs = obj.get("crs")
    if crs is None:
        return None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        return str(props.get("name") or props.get("href") or crs)
    return str(crs)


def parse_polygon(geojson: Any, field: str = "geometry") -> shapely.Geometry:
    """Parse a GeoJSON Polygon/MultiPolygon (or Feature) in lon/lat; 422 saying what is wrong."""
    if not isinstance(geojson, dict):
        raise InvalidInput(_("Send a GeoJSON Polygon or MultiPolygon object."), field=field)
    crs = _crs_name(geojson)
    if geojson.get("type") == "Feature":
        geometry = geojson.get("geometry")
        if not isinstance(geometry, dict):
            raise InvalidInput(_("The Feature has no geometry."), field=field)
        crs = crs or _crs_name(geometry)
        geojson = geometry
    else:
        crs = crs or _crs_name(geojson)
    if crs is not None and not any(crs.endswith(n) or crs == n for n in WGS84_NAMES):
        raise InvalidInput(
            _(
                "The polygon declares the coordinate system {crs!r}; send WGS84 "
                "longitude/latitude (EPSG:4326 / CRS84) and leave 'crs' out."
            ).format(crs=crs),
            field=f"{field}.crs",
        )
    gtype = geojson.get("type")
    if gtype not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(
            _("A turf must be a Polygon or MultiPolygon, not {gtype!r}.").format(gtype=gtype),
            field=f"{field}.type",
        )
    coords = geojson.get("coordinates")
    polygons = [coords] if gtype == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise InvalidInput(_("The polygon has no coordinates."), field=f"{field}.coordinates")
    vertices = 0
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise InvalidInput(
                _("Polygon {p} has no ring.").format(p=p), field=f"{field}.coordinates"
            )
        for r, ring in enumerate(rings):
            where = (
                _("Ring {r} of polygon {p}").format(r=r, p=p)
                if gtype == "MultiPolygon"
                else _("Ring {r}").format(r=r)
            )
            vertices += _ring_positions(ring, where, field)
    if vertices > MAX_VERTICES:
        raise InvalidInput(
            _(
                "The polygon has {vertices} vertices; at most {max} are accepted. "
                "Simplify the drawing."
            ).format(vertices=vertices, max=MAX_VERTICES),
            field=field,
        )
    geom = shape(geojson)
    if not geom.is_valid:
        raise _invalid(geom, field)
    if geom.area == 0:
        raise InvalidInput(_("The polygon has no area."), field=field)
    return geom


def swapped(geom: shapely.Geometry) -> shapely.Geometry:
    """The same polygon with longitude and latitude exchanged."""
    return transform(lambda x, y, z=None: (y, x), geom)


def _ring_positions(ring: Any, where: str, field: str) -> int:
    """Check one ring (at least 4 positions, each [longitude, latitude] in degrees, closed);
    its number of positions. ``where`` names the ring in the messages."""
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidInput(
            _("{where} needs at least 4 positions (a closed triangle).").format(where=where),
            field=f"{field}.coordinates",
        )
    try:
        pts = np.asarray([[float(c[0]), float(c[1])] for c in ring])
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidInput(
            _("{where} holds a position that is not [longitude, latitude].").format(where=where),
            field=f"{field}.coordinates",
        ) from exc
    if not np.all(np.isfinite(pts)):
        raise InvalidInput(
            _("{where} holds a non-number.").format(where=where),
            field=f"{field}.coordinates",
        )
    if np.any(np.abs(pts[:, 0]) > 180) or np.any(np.abs(pts[:, 1]) > 90):
        raise InvalidInput(
            _(
                "{where} has coordinates like {example}: these look projected (metres, "
                "e.g. Lambert-93 EPSG:2154), not longitude/latitude. Send WGS84 "
                "longitude/latitude in degrees."
            ).format(where=where, example=pts[0].tolist()),
            field=f"{field}.coordinates",
        )
    if not np.array_equal(pts[0], pts[-1]):
        raise InvalidInput(
            _("{where} is not closed: its last position must repeat the first.").format(
                where=where
            ),
            field=f"{field}.coordinates",
        )
    return len(pts)


def _invalid(geom: shapely.Geometry, field: str) -> InvalidInput:
    """The 422 for a polygon that is not valid: what GEOS found, and where."""
    reason = explain_validity(geom)
    m = re.search(r"\[([-\d.eE+]+) ([-\d.eE+]+)\]", reason)
    where = [float(m.group(1)), float(m.group(2))] if m else None
    what = reason.split("[")[0].strip()
    at = (
        _(" at longitude {lon:.6f}, latitude {lat:.6f}").format(lon=where[0], lat=where[1])
        if where
        else ""
    )
    if what.lower().startswith("self-intersection") or "Ring Self" in what:
        msg = _("The outline crosses itself{at}. Redraw it so that edges do not cross.")
    else:
        msg = _("The polygon is not valid ({what}){at}. Redraw it so that edges do not cross.")
    return InvalidInput(
        msg.format(what=what, at=at),
        field=field,
        extra={"where": where},
    )
