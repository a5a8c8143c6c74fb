"""Automatic cut through the API on the sample's largest polling station and Bruz's real doors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from shapely.geometry import MultiPoint, Point
from sqlalchemy import text

from app.geo.turf_split import project_local
from tests.fixtures_field import BRUZ_CENTRE, box, largest_district, smallest_district


async def _turf_doors(owner_engine, campaign_id):
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT td.turf_id, td.address_id, td.seq, a.lon, a.lat FROM turf_door td "
                    "JOIN turf t ON t.campaign_id = td.campaign_id AND t.id = td.turf_id "
                    "JOIN address a ON a.id = td.address_id "
                    "WHERE td.campaign_id = :c AND td.active ORDER BY td.turf_id, td.seq"
                ),
                {"c": campaign_id},
            )
        ).all()
    return rows


def _check_cut(body, rows, expected_doors: set[int], label: str) -> None:
    """Coverage, balance, contiguity (convex cells), walk shorter than input order."""
    door_ids = [r.address_id for r in rows]
    assert len(door_ids) == len(set(door_ids)), "a door is in two turfs"
    assert set(door_ids) == expected_doors, "a door was left out (or added)"
    key = {"doors": "door_count", "households": "households", "minutes": "minutes"}
    sizes = np.array([t[key[body["balance_on"]]] for t in body["turfs"]])
    mean = sizes.mean()
    assert np.all(np.abs(sizes - mean) <= 0.15 * mean), (sizes.min(), sizes.max(), mean)
    assert abs(mean - body["turf_size"]) <= 0.5 * body["turf_size"]
    # Contiguity: no turf's outline (convex hull of its doors) holds another turf's door.
    lon = np.array([r.lon for r in rows])
    lat = np.array([r.lat for r in rows])
    xy, _ = project_local(lon, lat)
    turf_of = np.array([str(r.turf_id) for r in rows])
    for t in np.unique(turf_of):
        hull = MultiPoint(xy[turf_of == t]).convex_hull.buffer(-0.5)
        others = xy[turf_of != t]
        assert not any(hull.contains(Point(p)) for p in others), f"turf {t} interleaves"
    walk = sum(t["walk_length_m"] for t in body["turfs"])
    stored = sum(t["input_order_length_m"] for t in body["turfs"])
    for t in body["turfs"]:
        assert t["walk_length_m"] < t["input_order_length_m"], t["name"]
        assert 0 < t["compactness"] <= 1
    print(
        f"\n[{label}] {len(door_ids)} doors -> {len(sizes)} turfs of {sizes.min()}..{sizes.max()} "
        f"(mean {mean:.1f}, max deviation {body['balance']['max_deviation']:.1%}); "
        f"walking order {walk / 1000:.1f} km vs stored order {stored / 1000:.1f} km "
        f"({walk / stored:.1%}); streets split {body['streets_split']}; compactness "
        f"min {min(t['compactness'] for t in body['turfs']):.2f}"
    )


async def test_cut_largest_polling_station(client, world, owner_engine):
    code, n = await largest_district(owner_engine)
    org = world.headers["organiser"]
    preview = await client.post(
        world.url(f"/districts/{code}/cut?dry_run=true"), json={"doors_per_turf": 150}, headers=org
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["dry_run"] is True
    assert all(t["id"] is None for t in preview.json()["turfs"])
    assert await _turf_doors(owner_engine, world.campaign_id) == []  # nothing saved

    r = await client.post(
        world.url(f"/districts/{code}/cut"), json={"doors_per_turf": 150}, headers=org
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["doors"] == n
    async with owner_engine.connect() as conn:
        expected = {
            x.id
            for x in await conn.execute(
                text(
                    "SELECT a.id FROM address a JOIN district d ON ST_Intersects(d.geom, a.geom) "
                    "WHERE d.code = :d"
                ),
                {"d": code},
            )
        }
    rows = await _turf_doors(owner_engine, world.campaign_id)
    _check_cut(body, rows, expected, f"sample {code}")
    assert [t["door_count"] for t in body["turfs"]] == [
        t["door_count"] for t in preview.json()["turfs"]
    ]  # the preview is what gets saved

    again = await client.post(
        world.url(f"/districts/{code}/cut"), json={"doors_per_turf": 150}, headers=org
    )
    assert again.status_code == 409
    assert code in again.json()["detail"]


async def test_cut_bruz_real_doors_around_the_centre(client, world, owner_engine):
    area = box(*BRUZ_CENTRE, 0.009, 0.006)
    r = await client.post(
        world.url("/cut"),
        json={"area": area, "doors_per_turf": 120},
        headers=world.headers["organiser"],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    async with owner_engine.connect() as conn:
        expected = {
            x.id
            for x in await conn.execute(
                text("SELECT id FROM address WHERE ST_Intersects(ST_GeomFromGeoJSON(:g), geom)"),
                {"g": __import__("json").dumps(area)},
            )
        }
    assert len(expected) > 1000  # real BAL doors of Bruz
    rows = await _turf_doors(owner_engine, world.campaign_id)
    _check_cut(body, rows, expected, "Bruz (real BAL doors)")


async def test_two_organisers_cutting_at_once_one_wins(client, world, owner_engine):
    code, _ = await smallest_district(owner_engine)
    url = world.url(f"/districts/{code}/cut")
    results = await asyncio.gather(
        client.post(url, json={"doors_per_turf": 40}, headers=world.headers["organiser"]),
        client.post(url, json={"doors_per_turf": 40}, headers=world.headers["admin"]),
    )
    assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.headers["content-type"].startswith("application/problem+json")
    rows = await _turf_doors(owner_engine, world.campaign_id)
    assert len(rows) == len({r.address_id for r in rows})


async def test_replace_archives_the_previous_cut(client, world, owner_engine):
    code, n = await smallest_district(owner_engine)
    org = world.headers["organiser"]
    first = await client.post(
        world.url(f"/districts/{code}/cut"), json={"doors_per_turf": 30}, headers=org
    )
    assert first.status_code == 201
    second = await client.post(
        world.url(f"/districts/{code}/cut"),
        json={"doors_per_turf": 60, "replace": True},
        headers=org,
    )
    assert second.status_code == 201, second.text
    rows = await _turf_doors(owner_engine, world.campaign_id)
    assert len(rows) == n == len({r.address_id for r in rows})
    listed = await client.get(world.url("/turfs?status=archived"), headers=org)
    assert len(listed.json()["turfs"]) == len(first.json()["turfs"])


async def test_cut_bad_requests(client, world):
    org = world.headers["organiser"]
    unknown = await client.post(
        world.url("/districts/99999_0001/cut"), json={"doors_per_turf": 150}, headers=org
    )
    assert unknown.status_code == 404 and "99999_0001" in unknown.json()["detail"]
    tiny = await client.post(
        world.url("/districts/92002_0001/cut"), json={"doors_per_turf": 0}, headers=org
    )
    assert tiny.status_code == 422 and tiny.json()["field"] == "doors_per_turf"
    both = await client.post(
        world.url("/cut"),
        json={"doors_per_turf": 100, "districts": ["92002_0001"], "area": box(*BRUZ_CENTRE, 0.001)},
        headers=org,
    )
    assert both.status_code == 422
    for role in ("analyst", "volunteer"):
        denied = await client.post(
            world.url("/districts/92002_0001/cut"),
            json={"doors_per_turf": 150},
            headers=world.headers[role],
        )
        assert denied.status_code == 403


async def test_cut_a_list_of_districts_and_campaigns_stay_apart(
    client, world, owner_engine, settings
):
    from tests.factories import make_world

    async with owner_engine.connect() as conn:
        codes = [
            r.code
            for r in await conn.execute(
                text(
                    "SELECT d.code FROM district d JOIN address a ON ST_Intersects(d.geom, a.geom) "
                    "GROUP BY d.code HAVING count(*) BETWEEN 60 AND 400 ORDER BY d.code LIMIT 2"
                )
            )
        ]
    assert len(codes) == 2
    r = await client.post(
        world.url("/cut"),
        json={"districts": codes, "doors_per_turf": 50},
        headers=world.headers["organiser"],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert {t["district_code"] for t in body["turfs"]} == set(codes)
    assert all(t["name"].startswith(t["district_code"]) for t in body["turfs"])
    rows = await _turf_doors(owner_engine, world.campaign_id)
    assert len(rows) == len({x.address_id for x in rows}) == body["doors"]
    # Another campaign sees none of it, and may cut the same district for itself.
    other = await make_world(owner_engine, settings)
    tid = body["turfs"][0]["id"]
    hidden = await client.get(world.url(f"/turfs/{tid}"), headers=other.headers["admin"])
    assert hidden.status_code == 404
    hidden = await client.get(other.url(f"/turfs/{tid}"), headers=other.headers["admin"])
    assert hidden.status_code == 404
    mine = await client.post(
        other.url(f"/districts/{codes[0]}/cut"),
        json={"doors_per_turf": 50},
        headers=other.headers["organiser"],
    )
    assert mine.status_code == 201


async def _households_by_door(owner_engine, code):
    async with owner_engine.connect() as conn:
        return {
            r.id: r.households or 1
            for r in await conn.execute(
                text(
                    "SELECT a.id, a.households FROM address a JOIN district d "
                    "ON ST_Intersects(d.geom, a.geom) WHERE d.code = :d"
                ),
                {"d": code},
            )
        }


async def _district_with_flats(owner_engine) -> tuple[str, int]:
    """The sample's polling station mixing houses and flats most: (code, largest door)."""
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT d.code, max(a.households) AS biggest FROM district d JOIN address a "
                    "ON ST_Intersects(d.geom, a.geom) GROUP BY d.code HAVING count(*) >= 60 "
                    "ORDER BY stddev_pop(a.households) / avg(a.households) DESC, d.code LIMIT 1"
                )
            )
        ).one()
    return row.code, row.biggest


async def test_cut_balances_households_by_default(client, world, owner_engine):
    """In flats the work is the households: the default cut balances them, not doors."""
    code, biggest = await _district_with_flats(owner_engine)
    households = await _households_by_door(owner_engine, code)
    assert biggest >= 5 * np.median(list(households.values()))  # houses and flats here
    size = max(120, 8 * biggest)  # a building is one door: the turf must hold several
    r = await client.post(
        world.url(f"/districts/{code}/cut"),
        json={"turf_size": size},
        headers=world.headers["organiser"],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["balance_on"] == "households" and body["balance"]["measure"] == "households"
    rows = await _turf_doors(owner_engine, world.campaign_id)
    _check_cut(body, rows, set(households), f"sample {code} by households")
    # Every turf reports the three measures, and they add up to the stored doors.
    per_turf: dict[str, float] = {}
    for row in rows:
        per_turf[str(row.turf_id)] = per_turf.get(str(row.turf_id), 0) + households[row.address_id]
    for t in body["turfs"]:
        assert t["households"] == pytest.approx(per_turf[t["id"]], abs=0.1)
        assert t["minutes"] == pytest.approx(
            (30 * t["door_count"] + 90 * t["households"]) / 60, 0.01
        )
    # The same district balanced on doors leaves the households far apart: the measure matters.
    by_doors = await client.post(
        world.url(f"/districts/{code}/cut?dry_run=true"),
        json={"doors_per_turf": round(body["doors"] / len(body["turfs"])), "replace": True},
        headers=world.headers["organiser"],
    )
    assert by_doors.status_code == 200, by_doors.text
    spread = [t["households"] for t in by_doors.json()["turfs"]]
    assert max(spread) > 1.3 * min(spread)


async def test_cut_balances_estimated_minutes(client, world, owner_engine):
    code, _ = await largest_district(owner_engine)
    r = await client.post(
        world.url(f"/districts/{code}/cut?dry_run=true"),
        json={
            "balance": "minutes",
            "turf_size": 240,
            "seconds_per_door": 45,
            "seconds_per_household": 60,
        },
        headers=world.headers["organiser"],
    )
    assert r.status_code == 200, r.text
    turfs = r.json()["turfs"]
    minutes = np.array([t["minutes"] for t in turfs])
    assert np.all(np.abs(minutes - minutes.mean()) <= 0.15 * minutes.mean())
    for t in turfs:
        assert t["minutes"] == pytest.approx(
            (45 * t["door_count"] + 60 * t["households"]) / 60, 0.01
        )


async def test_cut_size_errors_name_the_field(client, world):
    org = world.headers["organiser"]
    url = world.url("/districts/92002_0001/cut?dry_run=true")
    for body in (
        {},
        {"balance": "doors"},
        {"balance": "minutes", "turf_size": 5},
        {"balance": "votes", "turf_size": 50},
        {"doors_per_turf": 50, "balance": "households"},
    ):
        r = await client.post(url, json=body, headers=org)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"], body
