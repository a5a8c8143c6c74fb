"""Mapbox Vector Tiles of doors, turfs and districts, filtered by the caller's role (DESIGN §3).

One ``ST_AsMVT`` query per tile (SQL in ``app/sql/tiles_*.sql``), run on the request's own
transaction through the raw asyncpg connection: the ORM adds nothing on this hot path, and the
row-level security tenant set by ``CampaignScope`` applies to every campaign table it reads.

Who gets what:
- doors: admin and organiser see every door in the tile with its status (audited); volunteers only
  the doors of their active assignments; analysts never (403, enforced by ``app.authz`` too).
  At z <= ``GRID_MAX_ZOOM`` doors are aggregated into counts by status per grid cell.
- turfs: outlines with progress; volunteers only their assigned turfs; analysts none (as in the
  field API, docs/field.md).
- districts: outlines, with the ranking score when issue 6's cache has one (not for volunteers).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from app.errors import Forbidden, InvalidInput

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.security import CampaignContext

MAX_ZOOM = 22
DOORS_MIN_ZOOM = 10  # below this a door tile would cover a whole département: ask to zoom in
GRID_MAX_ZOOM = 14  # doors are aggregated per cell at and below this zoom
GRID_CELLS = 32  # cells per tile side when aggregated: at most 1,024 features per tile
STAFF = frozenset({"admin", "organiser"})
AUDIT_EVERY_S = 60.0  # at most one door-tile audit event per viewer and minute (per process)


@dataclass(frozen=True)
class Tile:
    """An encoded tile (empty bytes when nothing is in it) and its ETag."""

    data: bytes
    etag: str

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


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the request's session (same transaction, same tenant)."""
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    # The tenant (SET LOCAL) lives in the transaction that CampaignScope opened with its first
    # query; outside of it row-level security would see no campaign. Fail closed, loudly.
    if not raw.is_in_transaction():
        raise RuntimeError("tile query outside the request's transaction: no tenant is set")
    return raw  # type: ignore[no-any-return]


def _tile(data: bytes | None) -> Tile:
    data = data or b""
    return Tile(data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')


def _mvt_params(ctx: CampaignContext, z: int, x: int, y: int) -> list[Any]:
    s = ctx.settings
    return [ctx.campaign_id, z, x, y, s.mvt_extent, s.mvt_buffer]


# (campaign, viewer, layer) -> (time of the last audit event, tiles served since)
_last_audit: dict[tuple[uuid.UUID, str, str], float] = {}


async def _audit_doors(ctx: CampaignContext, z: int, x: int, y: int, rows: int) -> None:
    """Audit precise door locations seen, without one insert per tile.

    The first door tile a viewer gets in a minute writes an audit event (who, when, which tile,
    how many doors); tiles in the same minute are covered by it. Aggregated tiles (z <= 14) are
    counts, not locations, and are not audited.
    """
    viewer = str(ctx.principal.user_id or ctx.principal.invite_id)
    key = (ctx.campaign_id, viewer, "doors")
    now = time.monotonic()
    last = _last_audit.get(key)
    if last is not None and now - last < AUDIT_EVERY_S:
        return
    _last_audit[key] = now
    if len(_last_audit) > 10_000:  # bounded memory: forget the oldest viewers
        for k in sorted(_last_audit, key=_last_audit.__getitem__)[:5_000]:
            del _last_audit[k]
    await ctx.audit(
        "tiles.doors.view",
        object=f"tile {z}/{x}/{y}",
        rows=rows,
        details={"z": z, "x": x, "y": y, "covers_seconds": AUDIT_EVERY_S},
    )


async def doors_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The door layer for this caller (see the module docstring)."""
    check_tile(z, x, y)
    if ctx.role not in STAFF and ctx.role != "volunteer":
        raise Forbidden("Analysts see aggregates only: the door layer is not available to them.")
    if z < DOORS_MIN_ZOOM:
        raise InvalidInput(
            f"The door layer starts at zoom {DOORS_MIN_ZOOM}; zoom in (got {z}).", field="z"
        )
    conn = await raw_connection(ctx.session)
    params = _mvt_params(ctx, z, x, y)
    volunteer = ctx.role == "volunteer"
    if z <= GRID_MAX_ZOOM:
        name = "tiles_doors_grid_volunteer" if volunteer else "tiles_doors_grid"
        params.append(GRID_CELLS)
    else:
        name = "tiles_doors_volunteer" if volunteer else "tiles_doors"
        params.append(ctx.settings.mvt_max_features)
    if volunteer:
        params += [ctx.principal.user_id, ctx.assignment_id]
    if z <= GRID_MAX_ZOOM:
        return _tile(await conn.fetchval(sql(name), *params))
    row = await conn.fetchrow(sql(name), *params)
    tile = _tile(row["tile"])
    if not tile.empty:
        await _audit_doors(ctx, z, x, y, rows=row["doors"])
    return tile


async def turfs_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The turf layer: outlines with progress; volunteers get only their own turfs."""
    check_tile(z, x, y)
    conn = await raw_connection(ctx.session)
    if ctx.role == "analyst":
        raise Forbidden("Analysts see district aggregates only, not turfs.")
    data = await conn.fetchval(
        sql("tiles_turfs"),
        *_mvt_params(ctx, z, x, y),
        ctx.role == "volunteer",
        ctx.principal.user_id,
        ctx.assignment_id,
    )
    return _tile(data)


async def districts_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The district layer (with scores when the ranking cache has them); not for volunteers."""
    check_tile(z, x, y)
    if ctx.role == "volunteer":
        raise Forbidden("District scores are for organisers and analysts.")
    conn = await raw_connection(ctx.session)
    data = await conn.fetchval(sql("tiles_districts"), *_mvt_params(ctx, z, x, y), ctx.k_threshold)
    return _tile(data)
