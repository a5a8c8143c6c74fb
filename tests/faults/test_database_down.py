"""The database stops, restarts, stalls: 503 + Retry-After (never 500), nothing lost or doubled."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import text

from tests.factories import make_world
from tests.faults.bounds import bounded
from tests.fixtures_field import assigned_turf, count_visits, now_iso, visit

pytestmark = [pytest.mark.faults, pytest.mark.slow]


async def _batch(client, world, items):
    return await client.post(
        world.url("/visits"), json={"visits": items}, headers=world.headers["volunteer"]
    )


@bounded(120)
async def test_visits_while_the_database_stops_and_starts(
    fault_db, fault_client, fault_owner, fault_settings, caplog
):
    """Batches keep coming while PostgreSQL stops: 503 + Retry-After while down, no traceback,
    /health says so, /health/live stays up; after the restart every batch replays: 0 lost,
    0 doubled, without restarting the service."""
    world = await make_world(fault_owner, fault_settings)
    _, _, doors = await assigned_turf(fault_client, world, fault_owner, half=0.002)
    assert len(doors) >= 20
    batches = [
        [visit(doors[(b * 5 + i) % len(doors)], "not_home", at=now_iso()) for i in range(5)]
        for b in range(12)
    ]
    acknowledged: list[list[dict]] = []
    pending: list[list[dict]] = []
    r = await _batch(fault_client, world, batches[0])
    assert r.status_code == 200, r.text
    acknowledged.append(batches[0])

    caplog.set_level(logging.INFO)
    await asyncio.to_thread(fault_db.cluster.stop)
    try:
        for b in batches[1:8]:
            r = await _batch(fault_client, world, b)
            assert r.status_code == 503, (r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["Retry-After"]) > 0
            assert r.json()["retry_after"] == int(r.headers["Retry-After"])
            pending.append(b)
        health = await fault_client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"]["status"] == "unavailable"
        assert (await fault_client.get("/health/live")).status_code == 200
        # A map tile (the separate asyncpg pool) is refused the same way.
        tile = await fault_client.get(
            world.url("/tiles/doors/16/32449/22941.mvt"), headers=world.headers["organiser"]
        )
        assert tile.status_code == 503, tile.text
    finally:
        await asyncio.to_thread(fault_db.cluster.start)
    # One short line per refusal, never a traceback.
    assert not [rec for rec in caplog.records if rec.exc_info], [
        rec.getMessage() for rec in caplog.records if rec.exc_info
    ]
    assert any("503 on POST" in rec.getMessage() for rec in caplog.records)

    # Back up: the same service answers again (stale pooled connections are replaced).
    deadline = time.monotonic() + 30
    while (await fault_client.get("/health")).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        await asyncio.sleep(0.5)
    for b in pending + batches[8:]:  # the phone replays what was refused, then goes on
        for _ in range(5):
            r = await _batch(fault_client, world, b)
            if r.status_code == 200:
                break
            assert r.status_code == 503
            await asyncio.sleep(int(r.headers["Retry-After"]))
        assert r.status_code == 200, r.text
        acknowledged.append(b)
    for b in acknowledged:  # and replays everything once more (it lost its acks): no doubles
        assert (await _batch(fault_client, world, b)).status_code == 200
    ids = {item["id"] for b in acknowledged for item in b}
    assert await count_visits(fault_owner, world.campaign_id) == len(ids) == 60


@bounded(60)
async def test_a_statement_past_its_timeout_is_503(fault_client, fault_owner, fault_settings):
    """A visit batch stuck behind a lock past the statement timeout: 503, nothing stored."""
    world = await make_world(fault_owner, fault_settings)
    _, _, doors = await assigned_turf(fault_client, world, fault_owner)
    items = [visit(doors[0], "talked", at=now_iso())]
    async with fault_owner.connect() as conn:
        await conn.execute(text("BEGIN"))
        await conn.execute(text("LOCK TABLE visit IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        r = await _batch(fault_client, world, items)
        elapsed = time.monotonic() - started
        await conn.execute(text("ROLLBACK"))
    assert r.status_code == 503, r.text
    assert "a pris trop de temps" in r.json()["detail"]
    assert elapsed < fault_settings.statement_timeout_s + 3
    assert await count_visits(fault_owner, world.campaign_id) == 0
    again = await _batch(fault_client, world, items)
    assert again.status_code == 200 and again.json()["created"] == 1


@bounded(60)
async def test_a_request_past_its_deadline_is_503_and_rolled_back(fault_db, fault_owner):
    """The whole request has a deadline: a visit stuck behind a lock longer than it is stopped,
    answered 503, and nothing is stored."""
    import httpx

    from app.main import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        fault_db.urls, statement_timeout_s=30, request_deadline_s=1.5, db_pool_size=3
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://faults"
    ) as client:
        world = await make_world(fault_owner, settings)
        _, _, doors = await assigned_turf(client, world, fault_owner)
        items = [visit(doors[0], "talked", at=now_iso())]
        async with fault_owner.connect() as conn:
            await conn.execute(text("BEGIN"))
            await conn.execute(text("LOCK TABLE visit IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            r = await _batch(client, world, items)
            elapsed = time.monotonic() - started
            await conn.execute(text("ROLLBACK"))
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and elapsed < 5
        assert await count_visits(fault_owner, world.campaign_id) == 0
        assert (await _batch(client, world, items)).json()["created"] == 1
    await app.state.db.dispose()
