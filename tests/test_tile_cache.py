"""The door-tile cache and the tiles' hot path: never staler than the database, never wider.

Staff door tiles are kept per worker with the campaign's door version (migration 0009); these
tests change what a tile shows in every way the service knows of and check the next tile shows
it, check the version's bookkeeping in the database, and check that what is *not* cached (the
caller's standing, volunteer tiles, the audit) still behaves per request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import mapbox_vector_tile
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import _asyncpg, tenant_transaction
from app.security import encode_token
from app.services.field.tile_cache import TileCache
from tests.fixtures_browser import SPOT_A, add_visits, make_turf_world, tile_of
from tests.fixtures_field import visit


@pytest.fixture
async def tw(owner_engine, settings):
    return await make_turf_world(owner_engine, settings)


def door_url(tw, z: int = 17) -> str:
    x, y = tile_of(SPOT_A[0], SPOT_A[1], z)
    return tw.world.url(f"/tiles/doors/{z}/{x}/{y}.mvt")


async def statuses(client, tw, role: str = "organiser") -> dict[int, str]:
    resp = await client.get(door_url(tw), headers=tw.world.headers[role])
    assert resp.status_code == 200, resp.text
    feats = mapbox_vector_tile.decode(resp.content)["doors"]["features"]
    return {f["properties"]["id"]: f["properties"]["status"] for f in feats}


async def version(owner_engine, campaign_id: uuid.UUID) -> int:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT doors FROM campaign_change WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
        ).scalar_one()


async def test_cached_tile_follows_every_change(client, app, tw, owner_engine):
    """Hit while nothing changes; a visit (API), a flag, a new round (API) and an address
    import each show up on the very next request."""
    cache: TileCache = app.state.tile_cache
    door = tw.doors_a[0]
    assert (await statuses(client, tw))[door] == "pending"
    hits = cache.stats.hits
    again = await statuses(client, tw)
    assert again[door] == "pending" and cache.stats.hits == hits + 1

    # a volunteer records a visit through the API: grey at once on the organiser's map
    r = await client.post(
        tw.world.url("/visits"),
        json={"visits": [visit(door, "talked")]},
        headers=tw.world.headers["volunteer"],
    )
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    assert (await statuses(client, tw))[door] == "visited"

    # a do-not-knock flag written elsewhere (here: as the owner)
    await add_visits(owner_engine, tw, tw.doors_a[1:2], outcome="do_not_knock")
    assert (await statuses(client, tw))[tw.doors_a[1]] == "flagged"

    # a new round: every visited door is pending again, flags stay
    r = await client.post(
        tw.world.url("/rounds"), json={"name": "Second pass"}, headers=tw.world.headers["organiser"]
    )
    assert r.status_code in (200, 201), r.text
    after_round = await statuses(client, tw)
    assert after_round[door] == "pending" and after_round[tw.doors_a[1]] == "flagged"

    # a public address import (owner, no tenant) that removes a door from the map
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE address SET lon = lon + 1, lat = lat + 1 WHERE id = :d"), {"d": door}
        )
    try:
        assert door not in await statuses(client, tw)
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE address SET lon = lon - 1, lat = lat - 1 WHERE id = :d"), {"d": door}
            )


async def test_version_bumps_once_per_transaction_and_campaign(owner_engine, settings):
    """500 visits in one transaction bump their campaign once and no other campaign; the
    addresses concern every campaign; deleting a campaign with visits still works."""
    a = await make_turf_world(owner_engine, settings, n_doors=6)
    b = await make_turf_world(owner_engine, settings, n_doors=6)
    va, vb = (
        await version(owner_engine, a.world.campaign_id),
        await version(owner_engine, b.world.campaign_id),
    )
    await add_visits(owner_engine, a, a.doors_a * 80)  # 480 rows, one transaction
    assert await version(owner_engine, a.world.campaign_id) == va + 1
    assert await version(owner_engine, b.world.campaign_id) == vb

    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE address SET households = households WHERE id = 0"))
    assert await version(owner_engine, a.world.campaign_id) == va + 2
    assert await version(owner_engine, b.world.campaign_id) == vb + 1

    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM campaign WHERE id = :c"), {"c": a.world.campaign_id})
    async with owner_engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM campaign_change WHERE campaign_id = :c"),
                {"c": a.world.campaign_id},
            )
        ).scalar_one()
    assert left == 0


async def test_the_service_role_cannot_write_versions(settings, tw):
    """The counter is written by the owner's triggers only; the service sees its campaign's."""
    engine = create_async_engine(_asyncpg(settings.database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT set_config('porte.campaign_id', :c, true)"),
                {"c": str(tw.world.campaign_id)},
            )
            seen = (await conn.execute(text("SELECT count(*) FROM campaign_change"))).scalar_one()
            assert seen == 1  # its own campaign's row, and only that one
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text("UPDATE campaign_change SET doors = 0"))
    finally:
        await engine.dispose()


async def test_standing_is_checked_on_every_request(client, tw, owner_engine):
    """A cached tile is not a cached permission: removing the organiser cuts access at once."""
    organiser = tw.world.headers["organiser"]
    assert (await client.get(door_url(tw), headers=organiser)).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM membership WHERE campaign_id = :c AND user_id = :u"),
            {"c": tw.world.campaign_id, "u": tw.world.users["organiser"]},
        )
    gone = await client.get(door_url(tw), headers=organiser)
    assert gone.status_code == 404


async def test_volunteer_tiles_follow_the_assignment_not_the_cache(client, tw, owner_engine):
    """Ending an assignment changes no door, yet the volunteer's tile empties at once."""
    vol = tw.world.headers["volunteer"]
    assert (await client.get(door_url(tw), headers=vol)).status_code == 200
    r = await client.post(
        tw.world.url(f"/assignments/{tw.assignment_a}/end"), headers=tw.world.headers["organiser"]
    )
    assert r.status_code in (200, 204), r.text
    assert (await client.get(door_url(tw), headers=vol)).status_code == 204


async def test_cached_tiles_are_still_audited_per_viewer(client, app, tw, owner_engine):
    """The admin gets the organiser's cached tile, and an audit event of their own."""
    for role in ("organiser", "admin"):
        assert (await client.get(door_url(tw), headers=tw.world.headers[role])).status_code == 200
    await app.state.tile_audit.flush(everything=True)
    async with owner_engine.connect() as conn:
        roles = (
            (
                await conn.execute(
                    text(
                        "SELECT role FROM audit_event WHERE campaign_id = :c "
                        "AND action = 'tiles.doors.view' ORDER BY id"
                    ),
                    {"c": tw.world.campaign_id},
                )
            )
            .scalars()
            .all()
        )
    assert roles == ["organiser", "admin"]


async def test_a_remembered_token_still_expires(client, tw, settings):
    """Verified tokens are remembered, but not past their expiry."""
    token = encode_token(
        settings,
        {"sub": str(tw.world.users["organiser"]), "typ": "access", "mfa": False, "ver": 0},
        timedelta(seconds=2),
    )
    h = {"Authorization": f"Bearer {token}"}
    assert (await client.get(door_url(tw), headers=h)).status_code == 200
    await asyncio.sleep(2.1)
    assert (await client.get(door_url(tw), headers=h)).status_code == 401


def test_cache_is_bounded_and_keeps_the_newest_build():
    cache = TileCache(1000)
    cid = uuid.uuid4()
    for i in range(10):
        cache.put((cid, 16, i, 0), 1, f"tile {i}", 200)
    assert cache.bytes <= 1000 and len(cache) == 5
    assert cache.get((cid, 16, 0, 0), 1) is None  # evicted, least recently used
    assert cache.get((cid, 16, 9, 0), 1) == "tile 9"
    assert cache.get((cid, 16, 9, 0), 2) is None  # built at another version: not served
    cache.put((cid, 16, 9, 0), 3, "newer", 200)
    cache.put((cid, 16, 9, 0), 2, "older, finished later", 200)
    assert cache.get((cid, 16, 9, 0), 3) == "newer"
    off = TileCache(0)
    off.put((cid, 16, 1, 1), 1, "x", 10)
    assert not off.enabled and off.get((cid, 16, 1, 1), 1) is None


async def test_tenant_transaction_scopes_one_transaction_and_takes_only_uuids(app):
    """The hot path's tenant lives as long as its transaction; ids are never raw strings."""
    cid = uuid.uuid4()
    pool = await app.state.db.hot_pool()
    async with pool.acquire() as conn:
        with pytest.raises(TypeError):
            async with tenant_transaction(conn, "x', true); DROP TABLE visit; --", None):  # type: ignore[arg-type]
                pass
        async with tenant_transaction(conn, cid, None) as tx:
            assert await tx.fetchval("SELECT porte_current_campaign()") == cid
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT porte_current_campaign()") is None
        with pytest.raises(RuntimeError):
            async with tenant_transaction(conn, cid, None):
                raise RuntimeError("a failing tile")
        assert not conn.is_in_transaction()
