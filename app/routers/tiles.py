"""Vector tiles (MVT) of doors, turfs and districts for the organiser and analyst maps."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.security import HotCampaignScope, HotReplicaScope
from app.services.field import tiles as service

router = APIRouter(tags=["maps"])

MVT = "application/vnd.mapbox-vector-tile"
TILE_RESPONSES = {
    200: {"content": {MVT: {}}, "description": "The tile (Mapbox Vector Tile, version 2)."},
    204: {"description": "Nothing in this tile for you."},
    304: {"description": "Unchanged since the ETag you sent."},
}
PREFIX = "/campaigns/{campaign_id}/tiles"


def tile_response(request: Request, tile: service.Tile, cache_control: str) -> Response:
    """200 with the tile, 204 when empty, 304 when the client's ETag still matches."""
    headers = {"ETag": tile.etag, "Cache-Control": cache_control, "Vary": "Authorization"}
    if tile.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if tile.empty:
        return Response(status_code=204, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


@router.get(f"{PREFIX}/doors/{{z}}/{{x}}/{{y}}.mvt", responses=TILE_RESPONSES)
async def doors_tile(ctx: HotCampaignScope, request: Request, z: int, x: int, y: int) -> Response:
    """Doors with status (pending, visited, flagged); counts per cell at zoom 14 and below.

    Organisers and admins see every door (audited); volunteers only their assignment's doors;
    analysts get 403.
    """
    state = request.app.state
    tile = await service.doors_tile(
        ctx, z, x, y, tile_cache=state.tile_cache, tile_audit=state.tile_audit
    )
    # Statuses change as visits arrive: the client must revalidate (cheap with the ETag).
    return tile_response(request, tile, "private, no-cache")


@router.get(f"{PREFIX}/turfs/{{z}}/{{x}}/{{y}}.mvt", responses=TILE_RESPONSES)
async def turfs_tile(ctx: HotCampaignScope, request: Request, z: int, x: int, y: int) -> Response:
    """Turf outlines with doors, visited, flagged, progress and active assignments."""
    tile = await service.turfs_tile(ctx, z, x, y)
    return tile_response(request, tile, "private, no-cache")


@router.get(f"{PREFIX}/districts/{{z}}/{{x}}/{{y}}.mvt", responses=TILE_RESPONSES)
async def districts_tile(
    ctx: HotReplicaScope, request: Request, z: int, x: int, y: int
) -> Response:
    """District outlines of the campaign's territory with its ranking's score and aggregates
    (>= k); merged by commune at zoom 8 and below for a national or départemental campaign."""
    tile = await service.districts_tile(ctx, z, x, y, tile_cache=request.app.state.tile_cache)
    return tile_response(request, tile, "private, max-age=60")
