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
- districts: outlines of the campaign's territory with its own ranking's score and aggregates
  (>= k), not for volunteers. Shapes simplified per zoom (zooms 9-12); at zoom 8 and below, a
  national or départemental campaign gets districts merged by commune. Kept in memory per worker
  while the territory, the ranking and the districts are unchanged (same cache as the doors).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from app.authz import ANALYST, STAFF, VOLUNTEER
from app.db import generic_plan_off, tenant_transaction
from app.errors import Forbidden, InvalidInput
from app.i18n import _

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


# The volunteer's doors in the grid layer: those of the assignments of ``mine``.
_ONLY_MINE = """
      AND a.id IN (
          SELECT ad.address_id FROM assignment_door ad
          WHERE ad.campaign_id = $1 AND ad.assignment_id IN (SELECT id FROM mine)
      )"""


@cache
def doors_sql(grid: bool, volunteer: bool) -> str:
    """The door layer's statement: aggregated per cell (``grid``) or door by door, for a
    volunteer (the doors of their active assignments: ``tiles_doors_mine.sql`` fills the slot
    ``mine``) or for staff (every door). Door by door, ``tiles_doors_points.sql`` fills the slot
    ``points`` (with each door's walking order for a volunteer)."""
    if grid:
        if not volunteer:
            return sql("tiles_doors_grid").format(mine="", only_mine="")
        return sql("tiles_doors_grid").format(mine=sql("tiles_doors_mine"), only_mine=_ONLY_MINE)
    if not volunteer:
        return sql("tiles_doors").format(points=sql("tiles_doors_points").format(seq=""))
    points = sql("tiles_doors_points").format(seq="\n           d.seq,")
    return sql("tiles_doors_volunteer").format(mine=sql("tiles_doors_mine"), points=points)


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile coordinates outside the web-mercator pyramid, naming the field."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(
            _("Zoom must be between 0 and {max}, got {z}.").format(max=MAX_ZOOM, z=z), field="z"
        )
    side = 1 << z
    if not 0 <= x < side:
        raise InvalidInput(
            _("At zoom {z}, x must be between 0 and {max}, got {x}.").format(
                z=z, max=side - 1, x=x
            ),
            field="x",
        )
    if not 0 <= y < side:
        raise InvalidInput(
            _("At zoom {z}, y must be between 0 and {max}, got {y}.").format(
                z=z, max=side - 1, y=y
            ),
            field="y",
        )


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
        raise Forbidden(_("Analysts see aggregates only: the door layer is not available to them."))
    if z < DOORS_MIN_ZOOM:
        raise InvalidInput(
            _("The door layer starts at zoom {min}; zoom in (got {z}).").format(
                min=DOORS_MIN_ZOOM, z=z
            ),
            field="z",
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
    grid = z <= GRID_MAX_ZOOM
    params.append(GRID_CELLS if grid else ctx.settings.mvt_max_features)
    if volunteer:
        params += [ctx.principal.user_id, ctx.assignment_id]
    statement = doors_sql(grid, volunteer)
    async with tenant_transaction(ctx.conn, ctx.campaign_id, ctx.principal.user_id) as conn:
        if grid:
            return _tile(await conn.fetchval(statement, *params))
        row = await conn.fetchrow(statement, *params)
    return _tile(row["tile"], row["doors"])


async def turfs_tile(ctx: CampaignContext, z: int, x: int, y: int) -> Tile:
    """The turf layer: outlines with progress; volunteers get only their own turfs."""
    check_tile(z, x, y)
    if ctx.role == ANALYST:
        raise Forbidden(_("Analysts see district aggregates only, not turfs."))
    async with tenant_transaction(ctx.conn, ctx.campaign_id, ctx.principal.user_id) as conn:
        data = await conn.fetchval(
            sql("tiles_turfs"),
            *_mvt_params(ctx, z, x, y),
            ctx.role == VOLUNTEER,
            ctx.principal.user_id,
            ctx.assignment_id,
        )
    return _tile(data)


DISTRICT_SHAPES = (9, 12)  # zooms with simplified district shapes (district_shape.level)
COMMUNE_SHAPES = (5, 8)  # zooms where large territories are drawn by commune (commune_shape)
LARGE_TERRITORIES = frozenset({"country", "departement"})
# What a district tile shows depends on: the territory (kind and district list), the ranking the
# map draws (when it was last computed, and its stored values' counts), the districts themselves.
# The same query turns parallel workers off for the tile: their start-up costs more than a tile.
_MAP_VERSION = """
SELECT set_config('max_parallel_workers_per_gather', '0', true) AS serial,
       t.kind, t.version, r.districts, r.shaped, m.scoring_id,
       extract(epoch FROM s.computed_at)::float8 AS computed, sn.version AS values_version
FROM campaign_territory t
CROSS JOIN reference_state r
LEFT JOIN ranking_default m ON m.campaign_id = t.campaign_id
LEFT JOIN ranking_scoring s ON s.campaign_id = m.campaign_id AND s.id = m.scoring_id
LEFT JOIN ranking_snapshot sn ON sn.campaign_id = m.campaign_id AND sn.id = m.snapshot_id
WHERE t.campaign_id = $1
"""


STORED = (4096, 64)  # extent and buffer of the features cut in advance (map_tile_feature)


def district_layer(z: int, kind: str, stored: bool = True) -> tuple[str, int | None]:
    """Which statement (and shape level) draw the districts layer at zoom ``z``: features cut
    in advance for zooms 5-12 when the tile settings are the defaults (``stored``), else cut now
    from the shapes simplified for the zoom, or from the full polygons above zoom 12."""
    if z <= COMMUNE_SHAPES[1] and kind in LARGE_TERRITORIES:
        level = max(z, COMMUNE_SHAPES[0])
        return (
            ("tiles_communes_stored", None) if stored and z >= level else ("tiles_communes", level)
        )
    if z > DISTRICT_SHAPES[1]:
        return "tiles_districts", None  # full polygons: a tile covers a few streets
    if stored and z >= DISTRICT_SHAPES[0]:
        return "tiles_districts_stored", None
    return "tiles_districts", max(z, DISTRICT_SHAPES[0])


@cache
def district_sql(name: str) -> str:
    """A statement of the districts layer (``district_layer``) with its score, rank and counts
    filled in (slot ``values``): ``tiles_commune_values.sql`` for communes, else
    ``tiles_district_values.sql``, with k at bind $5 of the statements on features cut in
    advance (``_stored``), $7 of the others."""
    values = (
        "tiles_commune_values" if name.startswith("tiles_communes") else "tiles_district_values"
    )
    k = "$5::int" if name.endswith("_stored") else "$7::int"
    return sql(name).format(values=sql(values).format(k=k))


async def districts_tile(
    ctx: CampaignContext, z: int, x: int, y: int, *, tile_cache: TileCache | None = None
) -> Tile:
    """The district layer of the territory with the map's ranking; not for volunteers."""
    check_tile(z, x, y)
    if ctx.role == VOLUNTEER:
        raise Forbidden(_("District scores are for organisers and analysts."))
    key = ("districts", ctx.campaign_id, z, x, y)
    user = ctx.principal.user_id
    # the version on its generic plan: planned once per connection, not at every tile
    async with tenant_transaction(ctx.conn, ctx.campaign_id, user, generic_plans=True) as conn:
        state = await conn.fetchrow(_MAP_VERSION, ctx.campaign_id)
        kind = state["kind"] if state else "country"
        version = (
            (
                state["version"],
                state["districts"],
                state["shaped"],
                state["scoring_id"] or 0,
                state["computed"] or 0,
                state["values_version"] or 0,
            )
            if state
            else (0, 0, 0, 0, 0, 0)
        ) + (ctx.k_threshold,)
        cache = tile_cache if tile_cache is not None and tile_cache.enabled else None
        tile = cache.get(key, version) if cache is not None else None
        if tile is not None:
            return tile
        await generic_plan_off(conn)  # the tile's own query is planned for its tile
        settings = (ctx.settings.mvt_extent, ctx.settings.mvt_buffer)
        # features cut in advance only while they were built for the districts as they are
        current = state is not None and state["shaped"] == state["districts"]
        name, level = district_layer(z, kind, stored=settings == STORED and current)
        if name.endswith("_stored"):
            data = await conn.fetchval(
                district_sql(name), ctx.campaign_id, z, x, y, ctx.k_threshold
            )
        else:
            params = _mvt_params(ctx, z, x, y)
            data = await conn.fetchval(district_sql(name), *params, ctx.k_threshold, level)
    tile = _tile(data)
    if cache is not None:  # (an empty cache is falsy: it has a length)
        cache.put(key, version, tile, len(tile.data) + 200)
    return tile
