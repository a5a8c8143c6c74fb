"""OGC API - Features (read-only, Part 1 core + GeoJSON) over reference data and priority zones.

Why not tipg or pygeoapi mounted in the app: both publish tables from a catalogue built once at
start-up, over their own connection pool, to every caller alike. Our collections must run inside
the request's transaction, where ``CampaignScope`` has checked the role and set the RLS tenant, and
the priority zones are not a table but the campaign's (cached) ranking with counts below k blanked.
Neither tool has a hook for a per-request tenant and role without forking its dependencies, so
the few conformance classes QGIS needs (landing, conformance, collections, items with
bbox/limit/offset, one item, an OpenAPI 3.0 definition, feature schemas) are implemented here,
on the same services as the exports. Checked with a real client: GDAL's OAPIF driver
(tests/test_ogc_gdal.py), which follows the same requests as QGIS's provider.

What clients need beyond the bare standard, learnt from GDAL and QGIS's sources:

- QGIS refuses a landing page without an absolute ``service-desc`` link to an OpenAPI 3.0
  document, and reads the page size it may ask for from ``components.parameters.limit``.
- Both clients otherwise guess field types from the first page: a count blank (below k) on every
  district of that page becomes a text field, and a value written ``0`` becomes an integer field
  that truncates ``0.4`` later. So each collection links its schema (OGC API Features Part 5
  "returnables" form for QGIS >= 3.44 and recent GDAL, and the GeoJSON-feature form that GDAL 3.6
  reads through ``rel=describedBy``), and every value is written with its schema's type.
- ``limit`` above the maximum is lowered to it, not refused (Part 1, /req/core/fc-limit-response-1).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import text

from app import disclosure
from app.context import CampaignContext
from app.errors import InvalidInput, NotFound
from app.i18n import N_, _
from app.services.access import audit, territory
from app.services.ranking import exports
from app.services.ranking import service as rk
from app.services.ranking import sql as ranking_sql
from app.services.ranking.ogc_openapi import (  # noqa: F401  (the router reads them here)
    DEFAULT_LIMIT,
    GEOJSON,
    JSON,
    JSON_SCHEMA,
    MAX_LIMIT,
    OPENAPI,
)
from app.services.ranking.ogc_openapi import api_document as _api_document

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

SCHEMA_REL = "http://www.opengis.net/def/rel/ogc/1.0/schema"
TILE_COUNTS = ("ind", "men", "men_pauv", "log_soc")

# Property types (JSON Schema) of the two reference collections; priority zones: _zone_type.
DISTRICT_FIELDS = {
    "code": "string",
    "kind": "string",
    "name": "string",
    "commune_code": "string",
    "commune_name": "string",
}
TILE_FIELDS = {
    "living_standard": "number",
    "imputed": "boolean",
    **{
        f: t
        for name in TILE_COUNTS
        for f, t in ((name, "number"), (f"{name}_suppressed", "boolean"))
    },
}
GEOMETRY_FORMAT = {
    "districts": "geometry-multipolygon",
    "tiles": "geometry-polygon",
    "priority-zones": "geometry-multipolygon",
}

COLLECTIONS: dict[str, dict[str, str]] = {
    "districts": {
        "title": N_("Districts (polling stations / IRIS)"),
        "description": N_("Reference polygons with code, name and commune (public data)."),
    },
    "tiles": {
        "title": N_("INSEE Filosofi 200 m tiles"),
        "description": N_(
            "Population, households, poor households, social dwellings, mean standard of "
            "living; counts below the campaign's k are blank with a *_suppressed flag."
        ),
    },
    "priority-zones": {
        "title": N_("Priority zones (this campaign's ranking)"),
        "description": N_(
            "Districts with rank, score, contributions and aggregates; counts below k are blank "
            "with a *_suppressed flag. Never door points."
        ),
    },
}

# Every collection is limited to the campaign's territory (campaign_district). The tiles' extent
# is the districts' one widened by a tile (200 m): exact enough, and no pass over 2 million tiles.
_EXTENT = text(
    "SELECT ST_AsText(ST_Expand(ST_Extent(d.geom)::geometry, :margin)) FROM district d "
    "JOIN campaign_district cd ON cd.campaign_id = :c AND cd.district_code = d.code"
)
_DISTRICTS = text(
    "SELECT d.code, d.kind, d.name, d.commune_code, d.commune_name, "
    "ST_AsGeoJSON(d.geom, 7) AS g, count(*) OVER () AS matched FROM district d "
    "JOIN campaign_district cd ON cd.campaign_id = :c AND cd.district_code = d.code "
    "WHERE (CAST(:code AS text) IS NULL OR d.code = :code) AND (CAST(:x0 AS float8) IS NULL OR "
    "d.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)) "
    "ORDER BY d.code LIMIT :limit OFFSET :offset"
)
# A tile belongs to the territory when some of it is allocated to one of its districts.
_TILES = text(
    "SELECT id, ind, men, men_pauv, log_soc, ind_snv / nullif(ind, 0) AS living_standard, "
    "i_est_200, ST_AsGeoJSON(ST_Transform(geom, 4326), 7) AS g, count(*) OVER () AS matched "
    "FROM insee_tile WHERE (CAST(:code AS text) IS NULL OR id = :code) AND "
    "(CAST(:x0 AS float8) IS NULL OR geom && "
    "ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326), 3035)) "
    "AND (:country OR id IN (SELECT al.tile_id FROM district_alloc al JOIN campaign_district cd "
    "     ON cd.campaign_id = :c AND cd.district_code = al.district_code)) "
    "ORDER BY id LIMIT :limit OFFSET :offset"
)
_ZONES = text(
    ranking_sql.ROW
    + ", ST_AsGeoJSON(d.geom, 7) AS g, count(*) OVER () AS matched "
    + ranking_sql.ROW_FROM
    + "WHERE sc.campaign_id = :c AND sc.scoring_id = :s "
    "AND (CAST(:code AS text) IS NULL OR sc.district_code = :code) "
    "AND (CAST(:x0 AS float8) IS NULL OR "
    "ST_Intersects(d.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))) "
    "ORDER BY sc.rank LIMIT :limit OFFSET :offset"
)


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def _check(cid: str) -> None:
    if cid not in COLLECTIONS:
        raise NotFound(
            _("No collection {cid!r}. Collections: {known}.").format(
                cid=cid, known=", ".join(COLLECTIONS)
            )
        )


def landing(base: str) -> dict[str, Any]:
    """The landing page: what this service is and where its parts are (absolute links)."""
    return {
        "title": _("Porte-à-porte - OGC API Features"),
        "description": _("Reference data and this campaign's priority zones (read-only)."),
        "links": [
            _link(f"{base}", "self", title=_("This document")),
            _link(f"{base}/api", "service-desc", OPENAPI, _("The API definition (OpenAPI 3.0)")),
            _link(f"{base}/conformance", "conformance", title=_("Conformance classes")),
            _link(f"{base}/collections", "data", title=_("Collections")),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance classes implemented."""
    return {"conformsTo": CONFORMANCE}


def api_document(base: str) -> dict[str, Any]:
    """OpenAPI 3.0 definition of this campaign's OGC API (``ogc_openapi``)."""
    return _api_document(base, list(COLLECTIONS))


async def _extent(ctx: CampaignContext, cid: str) -> list[float] | None:
    margin = 0.003 if cid == "tiles" else 0.0
    box = (await ctx.session.execute(_EXTENT, {"c": ctx.campaign_id, "margin": margin})).scalar()
    if not box:
        return None
    return list(shapely.from_wkt(box).bounds)


async def collection(ctx: CampaignContext, base: str, cid: str) -> dict[str, Any]:
    """One collection's metadata (extent: the campaign's territory), links to items and schema."""
    _check(cid)
    await territory.ensure(ctx.session, ctx.campaign_id)
    meta = {key: _(text_) for key, text_ in COLLECTIONS[cid].items()}
    bbox = await _extent(ctx, cid)
    here = f"{base}/collections/{cid}"
    if cid == "priority-zones":  # an empty territory: say why, and what to do
        empty = await territory.why_empty(ctx.session, ctx.campaign_id)
        if empty is not None:
            meta["description"] += " " + empty["detail"] + " " + empty["action"]
    out: dict[str, Any] = {
        "id": cid,
        **meta,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            _link(here, "self"),
            _link(f"{here}/items", "items", GEOJSON, _("The features (GeoJSON)")),
            _link(f"{here}/schema", SCHEMA_REL, JSON_SCHEMA, _("Properties and their types")),
            # GDAL <= 3.8 reads field types from this older relation, as a GeoJSON Feature schema.
            _link(f"{here}/schema?shape=feature", "describedBy", JSON_SCHEMA),
        ],
    }
    if bbox:
        out["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return out


async def collections(ctx: CampaignContext, base: str) -> dict[str, Any]:
    """Every collection."""
    return {
        "links": [_link(f"{base}/collections", "self")],
        "collections": [await collection(ctx, base, cid) for cid in COLLECTIONS],
    }


def _zone_type(name: str) -> str:
    """JSON type of a priority-zones column (the export's columns, app.services.ranking.exports)."""
    if name.endswith("_suppressed"):
        return "boolean"
    if name == "rank" or name in exports.INTEGER_COUNTS:
        return "integer"
    if name in ("score", "damping") or name in exports.COUNTS or name[:2] in ("c_", "v_"):
        return "number"
    return "string"


async def _fields(ctx: CampaignContext, cid: str) -> dict[str, str]:
    if cid == "districts":
        return DISTRICT_FIELDS
    if cid == "tiles":
        return TILE_FIELDS
    prepared = await rk.prepare(
        ctx.session, ctx.campaign_id, k=ctx.k_threshold, settings=ctx.settings
    )
    columns = exports.zone_columns(exports.weighted_factors(prepared["header"]))
    return {name: _zone_type(name) for name in columns}


async def schema(ctx: CampaignContext, base: str, cid: str, shape: str | None) -> dict[str, Any]:
    """JSON Schema of a collection's features: Part 5 "returnables" or a GeoJSON Feature."""
    _check(cid)
    if shape not in (None, "feature"):
        raise InvalidInput(_("shape must be 'feature' or absent."), field="shape")
    fields = await _fields(ctx, cid)
    props: dict[str, Any] = {}
    for seq, (name, type_) in enumerate(fields.items(), start=1):
        props[name] = {"type": type_, "x-ogc-propertySeq": seq}
        if name.endswith("_suppressed"):
            counted = name.removesuffix("_suppressed")
            props[name]["description"] = _("True when {count} is below k and left blank.").format(
                count=counted
            )
    url = f"{base}/collections/{cid}/schema"
    doc: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url if shape is None else f"{url}?shape=feature",
        "title": _(COLLECTIONS[cid]["title"]),
        "type": "object",
    }
    if shape is None:
        geometry = {"format": GEOMETRY_FORMAT[cid], "x-ogc-role": "primary-geometry"}
        doc["properties"] = {"geometry": geometry, **props}
        return doc
    doc["required"] = ["type", "geometry", "properties"]
    doc["properties"] = {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string"},
        "geometry": {"type": "object"},
        "properties": {"type": "object", "properties": props},
    }
    return doc


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
            _(
                "bbox must be four numbers minx,miny,maxx,maxy (longitude/latitude, CRS84) with "
                "min <= max."
            ),
            field="bbox",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _typed(props: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """Each value written with its schema type (0 as 0.0 for numbers), so that clients that
    guess types from a page agree with the schema."""
    out = {}
    for name, value in props.items():
        type_ = fields.get(name)
        if value is not None and type_ == "number":
            value = float(value)
        elif value is not None and type_ == "integer":
            value = int(value)
        elif value is not None and type_ == "boolean":
            value = bool(value)
        out[name] = value
    return out


def _suppress_tile(row: Any, k: int) -> dict[str, Any]:
    """INSEE's public counts, blanked below k like every count (app.disclosure.blank_below)."""
    props: dict[str, Any] = {"living_standard": row.living_standard, "imputed": row.i_est_200 == 1}
    for name in TILE_COUNTS:
        value = getattr(row, name)
        shown = disclosure.blank_below(value, k)
        props[name] = shown
        props[f"{name}_suppressed"] = value is not None and shown is None
    return props


async def _zones(ctx: CampaignContext, binds: dict[str, Any]) -> tuple[list[dict], int]:
    """A page of priority zones (by rank, in the bbox), as GeoJSON features; how many match."""
    prepared = await rk.prepare(
        ctx.session, ctx.campaign_id, k=ctx.k_threshold, settings=ctx.settings
    )
    snap, scoring, header = prepared["snapshot"], prepared["scoring"], prepared["header"]
    weighted = exports.weighted_factors(header)
    fields = {name: _zone_type(name) for name in exports.zone_columns(weighted)}
    rows = (
        await ctx.session.execute(
            _ZONES, {**binds, "c": ctx.campaign_id, "s": scoring.id, "snap": snap.id}
        )
    ).all()
    features, matched = [], 0
    for row in rows:
        matched = row.matched
        d = disclosure.apply_k(
            rk.district_from_row(row, snap.names, header["weights"], scoring.weights),
            ctx.k_threshold,
        )
        props = _typed(exports.zone_record(d, weighted), fields)
        features.append(
            {"type": "Feature", "id": d["code"], "geometry": json.loads(row.g), "properties": props}
        )
    if not rows and binds["offset"]:
        first = (
            await ctx.session.execute(
                _ZONES,
                {
                    **binds,
                    "c": ctx.campaign_id,
                    "s": scoring.id,
                    "snap": snap.id,
                    "offset": 0,
                    "limit": 1,
                },
            )
        ).first()
        matched = first.matched if first else 0
    return features, matched


async def _reference_items(
    ctx: CampaignContext, cid: str, binds: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """A page of districts or tiles of the territory, as features; how many match."""
    sql = _DISTRICTS if cid == "districts" else _TILES
    kind = await territory.ensure_kind(ctx.session, ctx.campaign_id)
    binds = {**binds, "c": ctx.campaign_id, "country": kind == "country"}
    rows = (await ctx.session.execute(sql, binds)).all()
    features, matched = [], 0
    for row in rows:
        matched = row.matched
        if cid == "districts":
            fid = row.code
            props = {name: getattr(row, name) for name in DISTRICT_FIELDS}
        else:
            fid = row.id
            props = _typed(_suppress_tile(row, ctx.k_threshold), TILE_FIELDS)
        features.append(
            {"type": "Feature", "id": fid, "geometry": json.loads(row.g), "properties": props}
        )
    if not rows and binds["offset"]:
        first = (await ctx.session.execute(sql, {**binds, "offset": 0, "limit": 1})).first()
        matched = first.matched if first else 0
    return features, matched


def _page_links(
    base: str, cid: str, bbox: str | None, limit: int, offset: int, matched: int
) -> list[dict[str, str]]:
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
    return links


async def items(
    ctx: CampaignContext,
    base: str,
    cid: str,
    *,
    bbox: str | None,
    limit: int,
    offset: int,
    feature_id: str | None = None,
) -> dict[str, Any]:
    """A page of features (or one) of a collection, with next/prev links.

    Priority zones are k-suppressed aggregates, not personal data, but they are the campaign's
    own analysis leaving the service like an export: the first page of each read (offset 0) and
    each single feature write an ``ogc.priority_zones`` audit event (one per layer load, not one
    per page, so that paging a large département does not trip the burst detector).
    """
    _check(cid)
    box = parse_bbox(bbox)
    limit = min(limit, MAX_LIMIT)
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
    if cid == "priority-zones":
        features, matched = await _zones(ctx, binds)
        if offset == 0 and (feature_id is None or features):
            await audit.record(
                ctx,
                action="ogc.priority_zones",
                object=f"ogc/collections/{cid}/items" + (f"/{feature_id}" if feature_id else ""),
                rows=matched,
                details={"bbox": bbox, "limit": limit},
            )
    else:
        features, matched = await _reference_items(ctx, cid, binds)
    if feature_id is not None:
        if not features:
            raise NotFound(
                _("No feature {feature!r} in collection {cid!r}.").format(
                    feature=feature_id, cid=cid
                )
            )
        feature = features[0]
        feature["links"] = [
            _link(f"{base}/collections/{cid}/items/{feature_id}", "self", GEOJSON),
            _link(f"{base}/collections/{cid}", "collection"),
        ]
        return feature
    links = _page_links(base, cid, bbox, limit, offset, matched)
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
