"""Mapbox Vector Tiles of doors, turfs and districts, filtered by the caller's role (DESIGN §3).

One ``ST_AsMVT`` query per tile (SQL in ``app/sql/tiles_*.sql``) on a plain asyncpg connection
(``HotCampaignScope``: the caller's standing in one round trip, then the tile in a transaction
whose row-level security tenant is the campaign). The admin and organiser door layer is kept in
memory while the campaign's doors do not change (``app/services/field/tile_cache.py``).

Who gets what:
- doors: admin and organiser see every door in the tile with its status; volunteers only the
  doors of their active assignments; analysts never (403, enforced by ``app.authz`` too). Door
  tiles are audited per viewer and minute (``tile_audit``).
  At z <= ``GRID_MAX_ZOOM`` doors are aggregated into counts by status per grid cell.
- turfs: outlines with progress; volunteers only their assigned turfs; analysts none (as in the
  field API, docs/field.md).
- districts: outlines, with the ranking score when the ranking's cache has one (not for volunteers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from app.authz import ANALYST, STAFF, VOLUNTEER
from app.db import tenant_transaction
from app.errors import Forbidden, InvalidInput

if TYPE_CHECKING:
    from app.context import CampaignContext
    from app.services.field.tile_audit import TileAudit
    from app.services.field.tile_cache import TileCache

MAX_ZOOM = 22
DOORS_MIN_ZOOM = 10  # below this a door tile would cover a whole département: ask to zoom in
GRID_MAX_ZOOM = 14  # doors are aggregated per cell at and below this zoom
GRID_CELLS = 32  # cells per tile side when aggregated: at most 1,024 features per tile


@dataclass(frozen=True)
class Tile:
    """An encoded tile (empty bytes when nothing is in it) and its ETag."""

    data: bytes
    etag: str
    doors: int = 0  # door points in the tile (for the audit of precise locations)

    @property
    def empty(self) -> bool:
        """True when nothing of the layer falls in the tile (answered with 204)."""
        return not self.data


@cache
def sql(name: str) -> str:
    """The text of ``app/sql/<name>.sql``."""
    return resources.files("app.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile coordinates outside the web-mercator pyramid, naming the field."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"Zoom must be between 0 and {MAX_ZOOM}, got {z}.", field="z")
    side = 1 << z
    if not 0 <= x < side:
        raise InvalidInput(f"At zoom {z}, x must be between 0 and {side - 1}, got {x}.", field="x")
    if not 0 <= y < side:
        raise InvalidInput(f"At zoom {z}, y must be between 0 and {side - 1}, got {y}.", field="y")


def _tile(data: bytes | None, doors: int = 0) -> Tile:
    data = data or b""
    return Tile(data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"', doors)


def _mvt_params(ctx: CampaignContext, z: int, x: int, y: int) -> list[Any]:
    s = ctx.settings
    return [ctx.campaign_id, z, x, y, s.mvt_extent, s.mvt_buffer]


async def doors_tile(
    ctx: CampaignContext, z: int, x: int, y: int, *, tile_cache: TileCache, tile_audit: TileAudit
) -> Tile:
    """The door layer for this caller (see the module docstring).

    Door tiles above ``GRID_MAX_ZOOM`` show precise doors: each one served is counted in the
    viewer's audit window of the minute (``app/services/field/tile_audit.py``: one event per
    viewer and minute with the number of tiles and their bounding box). Aggregated tiles are
    counts, not locations, and are not audited.
    """
    check_tile(z, x, y)
    if ctx.role not in STAFF and ctx.role != VOLUNTEER:
        raise Forbidden("Analysts see aggregates only: the door layer is not available to them.")
    if z < DOORS_MIN_ZOOM:
        raise InvalidInput(
            f"The door layer starts at zoom {DOORS_MIN_ZOOM}; zoom in (got {z}).", field="z"
        )
    staff = ctx.role in STAFF
    key = (ctx.campaign_id, z, x, y)
    tile = tile_cache.get(key, ctx.doors_version) if staff and tile_cache.enabled else None
    if tile is None:
        tile = await _build_doors_tile(ctx, z, x, y)
        if staff:
            tile_cache.put(key, ctx.doors_version, tile, len(tile.data) + 200)
    if z > GRID_MAX_ZOOM and not tile.empty:
        tile_audit.seen(ctx, z, x, y, tile.doors)
    return tile


async def _build_doors_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    params = _mvt_params(ctx, z, x, y)
    volunteer = ctx.role == VOLUNTEER
    if z <= GRID_MAX_ZOOM:
        name = "tiles_doors_grid_volunteer" if volunteer else "tiles_doors_grid"
        params.append(GRID_CELLS)
    else:
        name = "tiles_doors_volunteer" if volunteer else "tiles_doors"
        params.append(ctx.settings.mvt_max_features)
    if volunteer:
        params += [ctx.principal.user_id, ctx.assignment_id]
    async with tenant_transaction(ctx.conn, ctx.campaign_id, ctx.principal.user_id) as conn:
        if z <= GRID_MAX_ZOOM:
            return _tile(await conn.fetchval(sql(name), *params))
        row = await conn.fetchrow(sql(name), *params)
    return _tile(row["tile"], row["doors"])


async def turfs_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The turf layer: outlines with progress; volunteers get only their own turfs."""
    check_tile(z, x, y)
    if ctx.role == ANALYST:
        raise Forbidden("Analysts see district aggregates only, not turfs.")
    async with tenant_transaction(ctx.conn, ctx.campaign_id, ctx.principal.user_id) as conn:
        data = await conn.fetchval(
            sql("tiles_turfs"),
            *_mvt_params(ctx, z, x, y),
            ctx.role == VOLUNTEER,
            ctx.principal.user_id,
            ctx.assignment_id,
        )
    return _tile(data)


async def districts_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The district layer (with scores when the ranking cache has them); not for volunteers."""
    check_tile(z, x, y)
    if ctx.role == VOLUNTEER:
        raise Forbidden("District scores are for organisers and analysts.")
    async with tenant_transaction(ctx.conn, ctx.campaign_id, ctx.principal.user_id) as conn:
        data = await conn.fetchval(
            sql("tiles_districts"), *_mvt_params(ctx, z, x, y), ctx.k_threshold
        )
    return _tile(data)
