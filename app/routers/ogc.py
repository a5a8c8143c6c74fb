"""OGC API - Features (read-only) of reference data and priority zones, for QGIS.

Mounted under the campaign (``/campaigns/{id}/ogc``) so that the same role checks (ReplicaScope)
and k-suppression apply; in QGIS add an "API header" authentication with the bearer token.
Every link in the responses is absolute (QGIS does not resolve relative ones).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.routers.responses import json_as
from app.security import ReplicaScope
from app.services.ranking import ogc as service

router = APIRouter(tags=["ogc"])
PREFIX = "/campaigns/{campaign_id}/ogc"
Fmt = Annotated[str | None, Query(alias="f", description="json (the only encoding)")]


def _base(request: Request, ctx: ReplicaScope) -> str:
    """Absolute URL of this campaign's OGC API, as the client reached it.

    ``porte serve`` does not trust proxy headers, so behind a TLS proxy the request looks like
    plain http: when the client used the public host, links take ``PORTE_PUBLIC_BASE_URL``
    (https, any path prefix) so that clients never follow a link that sends the token in clear.
    """
    public = urlsplit(ctx.settings.base_url)
    root = str(request.base_url)
    if public.netloc and public.netloc == request.url.netloc:
        root = ctx.settings.base_url
    return root.rstrip("/") + f"/campaigns/{ctx.campaign_id}/ogc"


def _json(body: dict, media_type: str = service.JSON) -> JSONResponse:
    return json_as(body, media_type, headers={"Cache-Control": "private, max-age=60"})


@router.get(PREFIX)
async def landing(request: Request, ctx: ReplicaScope, f: Fmt = None) -> JSONResponse:
    """OGC API landing page."""
    return _json(service.landing(_base(request, ctx)))


@router.get(PREFIX + "/api")
async def api(request: Request, ctx: ReplicaScope, f: Fmt = None) -> JSONResponse:
    """OpenAPI 3.0 definition of this OGC API (QGIS needs it; it reads the page size there)."""
    return _json(service.api_document(_base(request, ctx)), service.OPENAPI)


@router.get(PREFIX + "/conformance")
async def conformance(ctx: ReplicaScope, f: Fmt = None) -> JSONResponse:
    """Conformance classes (Part 1 core, GeoJSON, OpenAPI 3.0)."""
    return _json(service.conformance())


@router.get(PREFIX + "/collections")
async def collections(request: Request, ctx: ReplicaScope, f: Fmt = None) -> JSONResponse:
    """The collections: districts, tiles, priority-zones."""
    return _json(await service.collections(ctx, _base(request, ctx)))


@router.get(PREFIX + "/collections/{collection_id}")
async def collection(
    collection_id: str, request: Request, ctx: ReplicaScope, f: Fmt = None
) -> JSONResponse:
    """One collection's metadata and extent."""
    return _json(await service.collection(ctx, _base(request, ctx), collection_id))


@router.get(PREFIX + "/collections/{collection_id}/schema")
async def schema(
    collection_id: str,
    request: Request,
    ctx: ReplicaScope,
    shape: Annotated[
        str | None, Query(description="'feature': as a GeoJSON Feature schema (GDAL <= 3.8)")
    ] = None,
    f: Fmt = None,
) -> JSONResponse:
    """JSON Schema of the collection's features: property names and types."""
    body = await service.schema(ctx, _base(request, ctx), collection_id, shape)
    return _json(body, service.JSON_SCHEMA)


@router.get(PREFIX + "/collections/{collection_id}/items")
async def items(
    collection_id: str,
    request: Request,
    ctx: ReplicaScope,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in CRS84")] = None,
    limit: Annotated[
        int, Query(ge=1, description=f"at most {service.MAX_LIMIT}: more is lowered to it")
    ] = service.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
    f: Fmt = None,
) -> JSONResponse:
    """Features of a collection (GeoJSON), paged with limit/offset, filtered by bbox."""
    body = await service.items(
        ctx, _base(request, ctx), collection_id, bbox=bbox, limit=limit, offset=offset
    )
    return _json(body, service.GEOJSON)


@router.get(PREFIX + "/collections/{collection_id}/items/{feature_id}")
async def item(
    collection_id: str, feature_id: str, request: Request, ctx: ReplicaScope, f: Fmt = None
) -> JSONResponse:
    """One feature."""
    body = await service.items(
        ctx, _base(request, ctx), collection_id, bbox=None, limit=1, offset=0, feature_id=feature_id
    )
    return _json(body, service.GEOJSON)
