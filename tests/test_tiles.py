"""Vector tiles: decoded with mapbox-vector-tile, checked against the database and DESIGN §3."""

from __future__ import annotations

import contextlib
import time

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from app.services.field import tiles as tiles_service
from tests.factories import make_world
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


async def test_door_grid_counts_only_the_volunteers_doors(client, tw, owner_engine):
    """At z <= 14 doors are counts per cell: a volunteer's cells count only the doors of their
    assignment (the organiser's, every door of the tile), with the visited ones as visited."""
    h = tw.world.headers
    await add_visits(owner_engine, tw, tw.doors_a[:2])

    def counted(resp) -> dict[str, int]:
        cells = [f["properties"] for f in features(resp, "doors")]
        return {key: sum(c[key] for c in cells) for key in ("doors", "visited", "pending")}

    vol = counted(await client.get(url(tw, "doors", 14, SPOT_A), headers=h["volunteer"]))
    assert vol == {"doors": len(tw.doors_a), "visited": 2, "pending": len(tw.doors_a) - 2}
    org = counted(await client.get(url(tw, "doors", 14, SPOT_A), headers=h["organiser"]))
    assert org["doors"] > vol["doors"] and org["visited"] >= 2


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


async def test_district_tile_scores_with_k(client, app, owner_engine, settings):
    """Districts carry the campaign's own ranking (score, rank); counts below k are left out.
    The tile is served from the cache while what it draws is unchanged, built again when the
    campaign's ranking changes.

    Written first against the precomputed ranking (the old test wrote a ranking_cache row)."""
    cache = app.state.tile_cache
    world = await make_world(owner_engine, settings, k=150)
    h = world.headers["analyst"]
    async with owner_engine.connect() as conn:
        d = (
            await conn.execute(
                text(
                    "SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, "
                    "ST_Y(ST_PointOnSurface(geom)) AS lat FROM district ORDER BY code LIMIT 1"
                )
            )
        ).one()
    x, y = tile_of(d.lon, d.lat, 13)
    tile_url = world.url(f"/tiles/districts/13/{x}/{y}.mvt")
    before = features(await client.get(tile_url, headers=h), "districts")
    assert before and all("score" not in f["properties"] for f in before)  # no ranking yet
    r = await client.get(world.url("/ranking"), params={"limit": 1000}, headers=h)
    assert r.status_code == 200, r.text
    ranked = {x["code"]: x for x in r.json()["districts"]}
    props = {
        f["properties"]["code"]: f["properties"]
        for f in features(await client.get(tile_url, headers=h), "districts")
    }
    assert d.code in props
    for code, p in props.items():
        assert p["score"] == pytest.approx(round(ranked[code]["score"], 3), abs=1e-9)
        assert p["rank"] == ranked[code]["rank"]
        doors = ranked[code]["counts"]["doors"]  # blank below k = 150 in the API too
        assert p.get("doors") == doors
        assert "supporters" not in p and "visited_doors" not in p  # none, or below k
    assert any("doors" in p for p in props.values())
    assert any("doors" not in p for p in props.values())
    # another preset does not change what the map draws: the campaign's own ranking
    await client.get(world.url("/ranking"), params={"preset": "coverage"}, headers=h)
    again = {
        f["properties"]["code"]: f["properties"]["score"]
        for f in features(await client.get(tile_url, headers=h), "districts")
    }
    assert again == {c: p["score"] for c, p in props.items()}
    hits = cache.stats.hits
    assert features(await client.get(tile_url, headers=h), "districts")
    assert cache.stats.hits == hits + 1  # the same tile again: from the cache
    # new campaign weights: once the campaign's ranking is computed again, the map follows
    # (the cached tile is keyed on the ranking it draws)
    r = await client.put(
        world.url("/weights"),
        json={"weights": {"door_count": 1}},
        headers=world.headers["admin"],
    )
    assert r.status_code == 200, r.text
    reranked = {
        x["code"]: x
        for x in (
            await client.get(world.url("/ranking"), params={"limit": 1000}, headers=h)
        ).json()["districts"]
    }
    stale = cache.stats.stale
    moved = {
        f["properties"]["code"]: f["properties"]
        for f in features(await client.get(tile_url, headers=h), "districts")
    }
    assert cache.stats.stale == stale + 1  # the cached tile drew the old ranking: built again
    for code, p in moved.items():
        assert p["score"] == pytest.approx(round(reranked[code]["score"], 3), abs=1e-9)
        assert p["rank"] == reranked[code]["rank"]
    assert moved != props


async def test_low_zoom_district_tiles_are_merged_by_commune(client, owner_engine, settings):
    """A national campaign's map at z <= 8 draws communes (mean score, best rank, counts only
    when every district shows them); at z 9-12 simplified districts; a municipal campaign keeps
    its districts at every zoom."""
    world = await make_world(owner_engine, settings)
    h = world.headers["analyst"]
    r = await client.get(world.url("/ranking"), params={"limit": 1000}, headers=h)
    ranked = r.json()["districts"]
    by_commune: dict[str, list[dict]] = {}
    for d in ranked:
        by_commune.setdefault(d["commune_code"], []).append(d)
    lon, lat = 2.29, 48.755  # Antony
    x, y = tile_of(lon, lat, 8)
    low = features(
        await client.get(world.url(f"/tiles/districts/8/{x}/{y}.mvt"), headers=h), "districts"
    )
    communes = {f["properties"]["code"]: f["properties"] for f in low}
    assert set(communes) == set(by_commune)
    for code, p in communes.items():
        ds = by_commune[code]
        assert p["kind"] == "commune" and p["districts"] == len(ds)
        mean = sum(d["score"] for d in ds) / len(ds)
        assert p["score"] == pytest.approx(round(mean, 3), abs=1e-9)
        assert p["rank"] == min(d["rank"] for d in ds)
        if all(d["counts"]["doors"] is not None for d in ds):
            assert p["doors"] == sum(d["counts"]["doors"] for d in ds)
        else:
            assert "doors" not in p
    x, y = tile_of(lon, lat, 10)
    mid = features(
        await client.get(world.url(f"/tiles/districts/10/{x}/{y}.mvt"), headers=h), "districts"
    )
    assert {f["properties"]["kind"] for f in mid} == {"bureau_de_vote"}
    assert len(mid) == len(ranked)
    r = await client.put(
        world.url("/territory"),
        json={"kind": "communes", "codes": ["92071"]},
        headers=world.headers["admin"],
    )
    assert r.status_code == 200, r.text
    x, y = tile_of(lon, lat, 8)
    town = features(
        await client.get(world.url(f"/tiles/districts/8/{x}/{y}.mvt"), headers=h), "districts"
    )
    assert {f["properties"]["code"][:5] for f in town} == {"92071"}
    assert len(town) == len(by_commune["92071"])


async def test_stored_map_features_draw_the_same_tiles_as_cutting_them_now(
    client, owner_engine, settings
):
    """The features cut in advance (map_tile_feature) and the same tile cut at request time from
    the simplified shapes give the same features, attributes and geometries."""
    import asyncpg

    world = await make_world(owner_engine, settings)
    h = world.headers["analyst"]
    assert (await client.get(world.url("/ranking"), headers=h)).status_code == 200
    conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "SELECT set_config('porte.campaign_id', $1, false)", str(world.campaign_id)
        )
        for z, stored, live, level in (
            (10, "tiles_districts_stored", "tiles_districts", 10),
            (12, "tiles_districts_stored", "tiles_districts", 12),
            (8, "tiles_communes_stored", "tiles_communes", 8),
        ):
            x, y = tile_of(2.29, 48.755, z)
            cid = world.campaign_id
            a = await conn.fetchval(tiles_service.district_sql(stored), cid, z, x, y, 11)
            b = await conn.fetchval(
                tiles_service.district_sql(live), cid, z, x, y, 4096, 64, 11, level
            )
            fa = mapbox_vector_tile.decode(a)["districts"]["features"]
            fb = mapbox_vector_tile.decode(b)["districts"]["features"]
            key = lambda f: f["properties"]["code"]  # noqa: E731
            assert len(fa) == len(fb) > 0
            for f, g in zip(sorted(fa, key=key), sorted(fb, key=key), strict=True):
                assert f["properties"] == g["properties"]
                assert f["geometry"] == g["geometry"]
    finally:
        await conn.close()
