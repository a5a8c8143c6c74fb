"""The OpenAPI 3.0 definition of a campaign's OGC API - Features (QGIS reads the page size here).

QGIS refuses a landing page without an absolute ``service-desc`` link to such a document, and
reads the largest ``limit`` it may ask for from ``components.parameters.limit``.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMIT, MAX_LIMIT = 100, 10000
JSON, GEOJSON = "application/json", "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
JSON_SCHEMA = "application/schema+json"


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": description,
        "schema": schema,
    }


def _get(summary: str, media_type: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": summary, "content": {media_type: {}}},
                "401": {"description": "No or expired bearer token."},
                "403": {"description": "Your role in this campaign may not read it."},
                "404": {"description": "No such campaign, collection or feature."},
            },
        }
    }


def api_document(base: str, collections: list[str]) -> dict[str, Any]:
    """OpenAPI 3.0 definition of this campaign's OGC API (QGIS reads the limit maximum here)."""
    ref = {name: {"$ref": f"#/components/parameters/{name}"} for name in ("limit", "bbox")}
    collection = {"name": "collectionId", "in": "path", "required": True}
    collection["schema"] = {"type": "string", "enum": list(collections)}
    feature = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}}
    offset = _param(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": 2_000_000_000, "default": 0},
        "Features to skip (paging).",
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Porte-à-porte - OGC API Features",
            "version": "1.0.0",
            "description": "Read-only reference data and this campaign's priority zones. Every "
            "request needs the header Authorization: Bearer <token> of an admin, organiser or "
            "analyst of the campaign.",
        },
        "servers": [{"url": base}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "limit": _param(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                    f"Features per page; above {MAX_LIMIT} is lowered to {MAX_LIMIT}.",
                ),
                "bbox": _param(
                    "bbox",
                    {
                        "type": "array",
                        "minItems": 4,
                        "maxItems": 4,
                        "items": {"type": "number"},
                    },
                    "minx,miny,maxx,maxy in longitude/latitude (CRS84).",
                ),
            },
        },
        "paths": {
            "/": _get("Landing page", JSON, []),
            "/api": _get("This API definition", OPENAPI, []),
            "/conformance": _get("Conformance classes", JSON, []),
            "/collections": _get("Collections", JSON, []),
            "/collections/{collectionId}": _get("One collection", JSON, [collection]),
            "/collections/{collectionId}/schema": _get(
                "Properties of the collection's features", JSON_SCHEMA, [collection]
            ),
            "/collections/{collectionId}/items": _get(
                "Features (paged with limit/offset, next links)",
                GEOJSON,
                [collection, ref["limit"], ref["bbox"], offset],
            ),
            "/collections/{collectionId}/items/{featureId}": _get(
                "One feature", GEOJSON, [collection, feature]
            ),
        },
    }
