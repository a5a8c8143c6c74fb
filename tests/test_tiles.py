"""Vector tiles: decoded with mapbox-vector-tile, checked against the database and DESIGN §3."""

from __future__ import annotations

import contextlib
import time

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from app.services.field import tiles as tiles_service
from tests.fixtures_browser import SPOT_A, SPOT_B, add_visits, make_turf_world, tile_of


@pytest.fixture
async def tw(owner_engine, settings):
    """A fresh campaign with turfs A (the volunteer's) and B."""
    return await make_turf_world(owner_engine, settings)


def url(tw, layer: str, z: int, spot: tuple[float, float]) -> str:
    x, y = tile_of(spot[0], spot[1], z)
    return tw.world.url(f"/tiles/{layer}/{z}/{x}/{y}.mvt")


def features(resp, layer: str) -> list[dict]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(resp.content)[layer]["features"]


async def test_door_tile_status_and_role_filtering(client, tw, owner_engine):
    """Organisers see every door and status; volunteers only their assignment's; analysts 403."""
    h = tw.world.headers
    await add_visits(owner_engine, tw, tw.doors_a[:3])
    await add_visits(owner_engine, tw, tw.doors_a[3:4], outcome="do_not_knock")

    resp = await client.get(url(tw, "doors", 17, SPOT_A), headers=h["organiser"])
    organiser = features(resp, "doors")
    status = {f["properties"]["id"]: f["properties"]["status"] for f in organiser}
    assert {status[d] for d in tw.doors_a[:3]} == {"visited"}
    assert status[tw.doors_a[3]] == "flagged"
    assert {status[d] for d in tw.doors_a[4:] if d in status} == {"pending"}
    assert len(status) > len([d for d in tw.doors_a if d in status])  # other doors of Bruz too

    vol = features(await client.get(url(tw, "doors", 17, SPOT_A), headers=h["volunteer"]), "doors")
    ids = {f["properties"]["id"] for f in vol}
    assert ids and ids <= set(tw.doors_a)
    assert {f["properties"]["seq"] for f in vol} <= set(range(1, len(tw.doors_a) + 1))

    # turf B is someone else's: its tile holds doors for the organiser, none for the volunteer
    assert features(await client.get(url(tw, "doors", 17, SPOT_B), headers=h["organiser"]), "doors")
    other = await client.get(url(tw, "doors", 17, SPOT_B), headers=h["volunteer"])
    assert other.status_code == 204

    analyst = await client.get(url(tw, "doors", 17, SPOT_A), headers=h["analyst"])
    assert analyst.status_code == 403
    assert analyst.headers["content-type"].startswith("application/problem+json")


async def test_invite_session_sees_only_its_assignment(client, tw):
    """An invite-link session gets the doors of the invite's assignment only."""
    h = tw.world.headers
    body = {"assignment_id": str(tw.assignment_b)}
    made = await client.post(tw.world.url("/invites"), json=body, headers=h["organiser"])
    assert made.status_code == 201, made.text
    opened = await client.post("/auth/invite", json={"token": made.json()["token"]})
    assert opened.status_code == 200, opened.text
    inv = {"Authorization": f"Bearer {opened.json()['access_token']}"}
    mine = features(await client.get(url(tw, "doors", 17, SPOT_B), headers=inv), "doors")
    assert {f["properties"]["id"] for f in mine} <= set(tw.doors_b)
    assert (await client.get(url(tw, "doors", 17, SPOT_A), headers=inv)).status_code == 204
    turfs = features(await client.get(url(tw, "turfs", 14, SPOT_B), headers=inv), "turfs")
    assert {f["properties"]["id"] for f in turfs} == {str(tw.turf_b)}
    assert (await client.get(url(tw, "districts", 14, SPOT_B), headers=inv)).status_code == 403


async def test_etag_304_and_change(client, tw, owner_engine):
    """The ETag comes back as 304; a new visit changes the tile and its ETag."""
    h = tw.world.headers["organiser"]
    first = await client.get(url(tw, "doors", 17, SPOT_A), headers=h)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private")
    again = await client.get(url(tw, "doors", 17, SPOT_A), headers={**h, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    await add_visits(owner_engine, tw, tw.doors_a[5:6])
    changed = await client.get(url(tw, "doors", 17, SPOT_A), headers={**h, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_empty_tile_is_204_and_bad_coordinates_422(client, tw):
    h = tw.world.headers["organiser"]
    ocean = await client.get(tw.world.url("/tiles/doors/16/0/0.mvt"), headers=h)
    assert ocean.status_code == 204 and ocean.content == b""
    bad = await client.get(tw.world.url("/tiles/doors/16/70000/1.mvt"), headers=h)
    assert bad.status_code == 422 and bad.json()["field"] == "x"
    low = await client.get(tw.world.url("/tiles/doors/5/15/11.mvt"), headers=h)
    assert low.status_code == 422 and low.json()["field"] == "z"


async def test_other_campaign_gets_404(client, tw, owner_engine, settings):
    other = await make_turf_world(owner_engine, settings, n_doors=3)
    resp = await client.get(url(tw, "doors", 17, SPOT_A), headers=other.world.headers["organiser"])
    assert resp.status_code == 404


async def test_z14_doors_are_aggregated_and_small(client, tw, owner_engine):
    """At z14 the densest tile of the sample is counts per cell, < 50 kB, adding up to its doors."""
    async with owner_engine.connect() as conn:
        densest = (
            await conn.execute(
                text(
                    "SELECT floor((lon + 180) / 360 * 16384)::int AS x, "
                    "floor((1 - ln(tan(radians(lat)) + 1 / cos(radians(lat))) / pi()) / 2 * 16384)"
                    "::int AS y, count(*) AS n FROM address GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"
                )
            )
        ).one()
    await add_visits(owner_engine, tw, tw.doors_a[:2])
    resp = await client.get(
        tw.world.url(f"/tiles/doors/14/{densest.x}/{densest.y}.mvt"),
        headers=tw.world.headers["organiser"],
    )
    cells = features(resp, "doors")
    assert len(resp.content) < 50_000
    assert len(cells) <= tiles_service.GRID_CELLS**2
    assert all("id" not in c["properties"] and "status" not in c["properties"] for c in cells)
    props = [c["properties"] for c in cells]
    assert sum(p["doors"] for p in props) == densest.n
    assert all(p["doors"] == p["pending"] + p["visited"] + p["flagged"] for p in props)


async def _tile_events(owner_engine, campaign_id) -> list:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT role, row_count, object, details, flagged FROM audit_event "
                    "WHERE campaign_id = :c AND action = 'tiles.doors.view' ORDER BY id"
                ),
                {"c": campaign_id},
            )
        ).all()


@contextlib.contextmanager
def _audit_with(app, audit):
    """Serve with this tile audit (app.state is not monkeypatch-friendly)."""
    kept = app.state.tile_audit
    app.state.tile_audit = audit
    try:
        yield audit
    finally:
        app.state.tile_audit = kept


def _frozen(app, settings, **overrides):
    """A tile audit whose clock stays in one minute (no window split by a minute boundary)."""
    from app.services.field.tile_audit import TileAudit

    minute = 60 * (int(time.time()) // 60) + 1
    return TileAudit(app.state.db, settings.model_copy(update=overrides), clock=lambda: minute)


async def test_door_tiles_are_audited_per_viewer_minute_with_count_and_box(
    client, app, tw, owner_engine, settings
):
    """The minute's event named one tile, hiding a crawl. Now one event per viewer
    and minute with the number of tiles, the doors they held and their bounding box."""
    h = tw.world.headers["organiser"]
    asked = [(17, SPOT_A), (17, SPOT_B), (16, SPOT_A), (17, SPOT_A)]
    with _audit_with(app, _frozen(app, settings)) as audit:
        for z, spot in asked:
            assert (await client.get(url(tw, "doors", z, spot), headers=h)).status_code == 200
        # z14 (aggregated counts) and empty tiles show no door: not counted.
        assert (await client.get(url(tw, "doors", 14, SPOT_A), headers=h)).status_code == 200
        empty = await client.get(tw.world.url("/tiles/doors/16/0/0.mvt"), headers=h)
        assert empty.status_code == 204
    assert await _tile_events(owner_engine, tw.world.campaign_id) == []  # written after the minute
    assert await audit.flush(everything=True) == 1
    (event,) = await _tile_events(owner_engine, tw.world.campaign_id)
    d = event.details
    assert event.role == "organiser" and not event.flagged
    assert d["tiles"] == 4 and d["zooms"] == [16, 17] and event.row_count == d["doors"] > 0
    west, south, east, north = d["bbox"]
    for lon, lat in (SPOT_A, SPOT_B):
        assert west <= lon <= east and south <= lat <= north
    assert east - west < 0.02 and north - south < 0.02  # the tiles' box, not the town
    assert event.object.startswith("4 door tiles, z16-17, bbox ")
    assert d["window_end"] > d["window_start"]


async def test_a_bulk_crawl_is_flagged_and_workers_add_up(client, app, tw, owner_engine, settings):
    """More tiles in a minute than PORTE_AUDIT_TILE_BURST: the event is flagged. Two workers
    each write their share; the documented query adds them up per viewer and minute."""
    from app.services.field.tile_audit import TILE_MINUTES_SQL

    workers = [_frozen(app, settings, audit_tile_burst=5) for _ in range(2)]
    h = tw.world.headers["organiser"]
    x0, y0 = tile_of(*SPOT_A, 18)
    crawl = [(x0 + i, y0 + j) for i in range(-2, 3) for j in range(-2, 3)]
    served = 0
    for n, (x, y) in enumerate(crawl):
        with _audit_with(app, workers[n % 2]):
            r = await client.get(tw.world.url(f"/tiles/doors/18/{x}/{y}.mvt"), headers=h)
        served += r.status_code == 200
    assert served > 10
    for w in workers:
        await w.flush(everything=True)
    events = await _tile_events(owner_engine, tw.world.campaign_id)
    assert len(events) == 2 and all(e.flagged for e in events)
    async with owner_engine.connect() as conn:
        (minute,) = (await conn.execute(text(TILE_MINUTES_SQL), {"c": tw.world.campaign_id})).all()
    assert minute.tiles == served and minute.workers == 2 and minute.flagged
    assert minute.doors == sum(e.row_count for e in events)
    assert minute.west < SPOT_A[0] < minute.east and minute.south < SPOT_A[1] < minute.north


async def test_turf_tile_progress_by_role(client, tw, owner_engine):
    h = tw.world.headers
    await add_visits(owner_engine, tw, tw.doors_a[:3])
    await add_visits(owner_engine, tw, tw.doors_a[3:4], outcome="do_not_knock")
    resp = await client.get(url(tw, "turfs", 12, SPOT_A), headers=h["organiser"])
    turfs = features(resp, "turfs")
    by_id = {f["properties"]["id"]: f["properties"] for f in turfs}
    a = by_id[str(tw.turf_a)]
    assert (a["doors"], a["visited"], a["flagged"], a["assignments"]) == (12, 3, 1, 1)
    assert a["progress"] == pytest.approx(4 / 12, abs=1e-3)
    assert by_id[str(tw.turf_b)]["progress"] == 0
    vol = features(await client.get(url(tw, "turfs", 12, SPOT_A), headers=h["volunteer"]), "turfs")
    assert {f["properties"]["id"] for f in vol} == {str(tw.turf_a)}
    assert (await client.get(url(tw, "turfs", 12, SPOT_A), headers=h["analyst"])).status_code == 403


async def test_district_tile_scores_with_k(client, tw, owner_engine):
    """Districts carry the latest ranking's score; counts below k are left out."""
    async with owner_engine.connect() as conn:
        d = (
            await conn.execute(
                text(
                    "SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, "
                    "ST_Y(ST_PointOnSurface(geom)) AS lat FROM district ORDER BY code LIMIT 1"
                )
            )
        ).one()
    result = {
        "districts": [
            {
                "code": d.code,
                "rank": 1,
                "score": 1.23456,
                "counts": {
                    "doors": 5,
                    "supporters": 40,
                    "visited_doors": 12,
                    "visited_doors_suppressed": True,
                },
            }
        ]
    }
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ranking_cache (campaign_id, cache_key, fingerprint, result) "
                "VALUES (:c, 'test', 'test', CAST(:r AS jsonb))"
            ),
            {"c": tw.world.campaign_id, "r": __import__("json").dumps(result)},
        )
    x, y = tile_of(d.lon, d.lat, 13)
    resp = await client.get(
        tw.world.url(f"/tiles/districts/13/{x}/{y}.mvt"), headers=tw.world.headers["analyst"]
    )
    props = {f["properties"]["code"]: f["properties"] for f in features(resp, "districts")}
    p = props[d.code]
    assert p["score"] == pytest.approx(1.235) and p["rank"] == 1
    assert p["supporters"] == 40
    assert "doors" not in p  # 5 < k = 11
    assert "visited_doors" not in p  # suppressed by the ranking itself
    others = [v for k, v in props.items() if k != d.code]
    assert all("score" not in v for v in others)
