"""OGC API - Features (read-only, Part 1 core + GeoJSON) over reference data and priority zones.

Why not tipg or pygeoapi mounted in the app: both publish tables from a catalogue built once at
start-up, over their own connection pool, to every caller alike. Our collections must run inside
the request's transaction, where ``CampaignScope`` has checked the role and set the RLS tenant, and
the priority zones are not a table but the campaign's (cached) ranking with counts below k blanked.
Neither tool has a hook for a per-request tenant and role without forking its dependencies, so
the few conformance classes QGIS needs (landing, conformance, collections, items with
bbox/limit/offset, one item) are implemented here, on the same services as the exports.
"""

from __future__ import annotations

import json
from typing import Any

import shapely
from sqlalchemy import text

from app.errors import InvalidInput, NotFound
from app.services import exports

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON, JSON = "application/geo+json", "application/json"
TILE_COUNTS = ("ind", "men", "men_pauv", "log_soc")

COLLECTIONS: dict[str, dict[str, str]] = {
    "districts": {
        "title": "Districts (polling stations / IRIS)",
        "description": "Reference polygons with code, name and commune (public data).",
    },
    "tiles": {
        "title": "INSEE Filosofi 200 m tiles",
        "description": "Population, households, poor households, social dwellings, mean standard "
        "of living; counts below the campaign's k are blank with a *_suppressed flag.",
    },
    "priority-zones": {
        "title": "Priority zones (this campaign's ranking)",
        "description": "Districts with rank, score, contributions and aggregates; counts below k "
        "are blank with a *_suppressed flag. Never door points.",
    },
}

_EXTENT = {
    "districts": "SELECT ST_Extent(geom) FROM district",
    "tiles": "SELECT ST_Extent(ST_Transform(geom, 4326)) FROM insee_tile",
    "priority-zones": "SELECT ST_Extent(geom) FROM district",
}
_DISTRICTS = text(
    "SELECT code, kind, name, commune_code, commune_name, ST_AsGeoJSON(geom, 7) AS g, "
    "count(*) OVER () AS matched FROM district "
    "WHERE (CAST(:code AS text) IS NULL OR code = :code) AND (CAST(:x0 AS float8) IS NULL OR "
    "geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)) ORDER BY code LIMIT :limit OFFSET :offset"
)
_TILES = text(
    "SELECT id, ind, men, men_pauv, log_soc, ind_snv / nullif(ind, 0) AS living_standard, "
    "i_est_200, ST_AsGeoJSON(ST_Transform(geom, 4326), 7) AS g, count(*) OVER () AS matched "
    "FROM insee_tile WHERE (CAST(:code AS text) IS NULL OR id = :code) AND "
    "(CAST(:x0 AS float8) IS NULL OR geom && "
    "ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326), 3035)) "
    "ORDER BY id LIMIT :limit OFFSET :offset"
)


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def landing(base: str) -> dict[str, Any]:
    """The landing page: what this service is and where its parts are."""
    return {
        "title": "Porte-à-porte - OGC API Features",
        "description": "Reference data and this campaign's priority zones (read-only).",
        "links": [
            _link(f"{base}", "self"),
            _link(f"{base}/conformance", "conformance"),
            _link(f"{base}/collections", "data"),
            _link("/openapi.json", "service-desc", "application/vnd.oai.openapi+json;version=3.0"),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance classes implemented."""
    return {"conformsTo": CONFORMANCE}


async def _extent(session: Any, cid: str) -> list[float] | None:
    box = (await session.execute(text(f"SELECT ST_AsText(({_EXTENT[cid]}))"))).scalar()
    if not box:
        return None
    return list(shapely.from_wkt(box).bounds)


async def collection(session: Any, base: str, cid: str) -> dict[str, Any]:
    """One collection's metadata."""
    if cid not in COLLECTIONS:
        raise NotFound(f"No collection {cid!r}. Collections: {', '.join(COLLECTIONS)}.")
    meta = COLLECTIONS[cid]
    bbox = await _extent(session, cid)
    out: dict[str, Any] = {
        "id": cid,
        **meta,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            _link(f"{base}/collections/{cid}", "self"),
            _link(f"{base}/collections/{cid}/items", "items", GEOJSON),
        ],
    }
    if bbox:
        out["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return out


async def collections(session: Any, base: str) -> dict[str, Any]:
    """Every collection."""
    return {
        "links": [_link(f"{base}/collections", "self")],
        "collections": [await collection(session, base, cid) for cid in COLLECTIONS],
    }


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` in CRS84; 422 naming the field otherwise."""
    if bbox is None:
        return None
    try:
        parts = [float(p) for p in bbox.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise InvalidInput(
            "bbox must be four numbers minx,miny,maxx,maxy (longitude/latitude, CRS84) with "
            "min <= max.",
            field="bbox",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _suppress_tile(row: Any, k: int) -> dict[str, Any]:
    props: dict[str, Any] = {"living_standard": row.living_standard, "imputed": row.i_est_200 == 1}
    for name in TILE_COUNTS:
        value = getattr(row, name)
        hidden = value is not None and value < k
        props[name] = None if hidden else value
        props[f"{name}_suppressed"] = hidden
    return props


async def items(
    ctx: Any,
    base: str,
    cid: str,
    *,
    bbox: str | None,
    limit: int,
    offset: int,
    feature_id: str | None = None,
) -> dict[str, Any]:
    """A page of features (or one) of a collection, with next/prev links."""
    if cid not in COLLECTIONS:
        raise NotFound(f"No collection {cid!r}. Collections: {', '.join(COLLECTIONS)}.")
    box = parse_bbox(bbox)
    binds = {
        "x0": None,
        "y0": None,
        "x1": None,
        "y1": None,
        "limit": limit,
        "offset": offset,
        "code": feature_id,
    }
    if box:
        binds.update(zip(("x0", "y0", "x1", "y1"), box, strict=True))
    features: list[dict[str, Any]] = []
    matched = 0
    if cid == "priority-zones":
        gdf, _ = await exports.priority_zones_frame(ctx.session, ctx.campaign_id, k=ctx.k_threshold)
        if feature_id is not None:
            gdf = gdf[gdf["code"] == feature_id]
        if box:
            gdf = gdf[gdf.intersects(shapely.box(*box))]
        matched = len(gdf)
        page = gdf.iloc[offset : offset + limit]
        for feature in json.loads(page.to_json(na="null", drop_id=True))["features"]:
            feature["id"] = feature["properties"]["code"]
            features.append(feature)
    else:
        sql = _DISTRICTS if cid == "districts" else _TILES
        rows = (await ctx.session.execute(sql, binds)).all()
        for row in rows:
            matched = row.matched
            if cid == "districts":
                fid = row.code
                props = {
                    "code": row.code,
                    "kind": row.kind,
                    "name": row.name,
                    "commune_code": row.commune_code,
                    "commune_name": row.commune_name,
                }
            else:
                fid, props = row.id, _suppress_tile(row, ctx.k_threshold)
                props["id"] = row.id
            features.append(
                {"type": "Feature", "id": fid, "geometry": json.loads(row.g), "properties": props}
            )
        if not rows and offset:
            matched = (await ctx.session.execute(sql, {**binds, "offset": 0, "limit": 1})).first()
            matched = matched.matched if matched else 0
    if feature_id is not None:
        if not features:
            raise NotFound(f"No feature {feature_id!r} in collection {cid!r}.")
        feature = features[0]
        feature["links"] = [
            _link(f"{base}/collections/{cid}/items/{feature_id}", "self", GEOJSON),
            _link(f"{base}/collections/{cid}", "collection"),
        ]
        return feature
    here = f"{base}/collections/{cid}/items"
    extra = f"&bbox={bbox}" if bbox else ""
    links = [
        _link(f"{here}?limit={limit}&offset={offset}{extra}", "self", GEOJSON),
        _link(f"{base}/collections/{cid}", "collection"),
    ]
    if offset + limit < matched:
        links.append(_link(f"{here}?limit={limit}&offset={offset + limit}{extra}", "next", GEOJSON))
    if offset > 0:
        links.append(
            _link(f"{here}?limit={limit}&offset={max(offset - limit, 0)}{extra}", "prev", GEOJSON)
        )
    from datetime import UTC, datetime

    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(),
        "links": links,
    }
