"""Drawing a turf: the doors inside become the turf; every bad polygon gets a clear 422."""

from __future__ import annotations

import math

from sqlalchemy import text

from tests.fixtures_field import BRUZ_CENTRE, box

LON, LAT = BRUZ_CENTRE


async def _draw(client, world, geometry, name="Centre", role="organiser"):
    """Draw a turf; the refusals are read in English (French is the default)."""
    return await client.post(
        world.url("/turfs"),
        json={"name": name, "geometry": geometry},
        headers={**world.headers[role], "Accept-Language": "en"},
    )


async def test_drawn_turf_holds_the_doors_inside_in_walking_order(client, world, owner_engine):
    geometry = box(LON, LAT, 0.0025, 0.0015)
    r = await _draw(client, world, geometry)
    assert r.status_code == 201, r.text
    turf = r.json()
    async with owner_engine.connect() as conn:
        inside = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM address WHERE ST_Intersects(ST_GeomFromGeoJSON(:g), geom)"
                ),
                {"g": __import__("json").dumps(geometry)},
            )
        ).scalar_one()
        seqs = [
            r.seq
            for r in await conn.execute(
                text("SELECT seq FROM turf_door WHERE turf_id = :t ORDER BY seq"), {"t": turf["id"]}
            )
        ]
    assert inside > 20
    assert turf["door_count"] == inside == len(seqs)
    assert seqs == list(range(1, inside + 1))
    assert turf["origin"] == "drawn" and turf["status"] == "active"
    assert turf["walk_length_m"] > 0 and 0 < turf["compactness"] <= 1
    assert turf["progress"]["doors"] == inside and turf["progress"]["pending"] == inside
    # Analysts and volunteers do not draw turfs.
    assert (
        await _draw(client, world, box(LON + 0.01, LAT, 0.001), role="analyst")
    ).status_code == 403


async def test_overlapping_an_active_turf_names_it_and_where(client, world):
    first = await _draw(client, world, box(LON, LAT, 0.002), name="Nord")
    assert first.status_code == 201
    r = await _draw(client, world, box(LON + 0.003, LAT, 0.002), name="Sud")
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "geometry"
    assert body["turf_id"] == first.json()["id"]
    assert "'Nord'" in body["detail"]
    lon, lat = body["where"]
    assert LON + 0.001 <= lon <= LON + 0.002 and abs(lat - LAT) <= 0.002
    # Touching along an edge is fine.
    beside = await _draw(client, world, box(LON + 0.004, LAT, 0.002), name="Est")
    assert beside.status_code == 201, beside.text


async def test_self_intersection_says_where(client, world):
    bow_tie = {
        "type": "Polygon",
        "coordinates": [
            [
                [LON - 0.002, LAT - 0.002],
                [LON + 0.002, LAT + 0.002],
                [LON + 0.002, LAT - 0.002],
                [LON - 0.002, LAT + 0.002],
                [LON - 0.002, LAT - 0.002],
            ]
        ],
    }
    r = await _draw(client, world, bow_tie)
    assert r.status_code == 422
    body = r.json()
    assert "crosses itself" in body["detail"]
    assert math.isclose(body["where"][0], LON, abs_tol=1e-6)
    assert math.isclose(body["where"][1], LAT, abs_tol=1e-6)


async def test_wrong_crs_projected_and_swapped_coordinates(client, world):
    lambert = {
        "type": "Polygon",
        "crs": {"type": "name", "properties": {"name": "EPSG:2154"}},
        "coordinates": box(LON, LAT, 0.001)["coordinates"],
    }
    r = await _draw(client, world, lambert)
    assert r.status_code == 422 and r.json()["field"] == "geometry.crs"
    assert "EPSG:2154" in r.json()["detail"]

    metres = {
        "type": "Polygon",
        "coordinates": [
            [
                [346000, 6780000],
                [347000, 6780000],
                [347000, 6781000],
                [346000, 6781000],
                [346000, 6780000],
            ]
        ],
    }
    r = await _draw(client, world, metres)
    assert r.status_code == 422 and "projected" in r.json()["detail"]

    swapped = {
        "type": "Polygon",
        "coordinates": [[[lat, lon] for lon, lat in box(LON, LAT, 0.002)["coordinates"][0]]],
    }
    r = await _draw(client, world, swapped)
    assert r.status_code == 422
    assert "swapped" in r.json()["detail"] and r.json()["field"] == "geometry.coordinates"
    # A CRS84 declaration is accepted.
    crs84 = {
        **box(LON - 0.004, LAT + 0.004, 0.0008),
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
    }
    r = await _draw(client, world, crs84)
    assert r.status_code == 201, r.text


async def test_outside_area_too_many_vertices_no_doors_and_malformed(client, world):
    r = await _draw(client, world, box(-60.0, -30.0, 0.01))  # South Atlantic
    assert r.status_code == 422 and "outside the loaded area" in r.json()["detail"]
    assert r.json()["where"] is not None

    n = 6000
    ring = [
        [LON + 0.002 * math.cos(2 * math.pi * i / n), LAT + 0.002 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    ring.append(ring[0])
    r = await _draw(client, world, {"type": "Polygon", "coordinates": [ring]})
    assert r.status_code == 422 and "6001 vertices" in r.json()["detail"]

    open_ring = {"type": "Polygon", "coordinates": [box(LON, LAT, 0.001)["coordinates"][0][:-1]]}
    r = await _draw(client, world, open_ring)
    assert r.status_code == 422 and "not closed" in r.json()["detail"]

    point = {"type": "Point", "coordinates": [LON, LAT]}
    r = await _draw(client, world, point)
    assert r.status_code == 422 and r.json()["field"] == "geometry.type"

    extra = await client.post(
        world.url("/turfs"),
        json={"name": "x", "geometry": box(LON, LAT, 0.001), "colour": "red"},
        headers=world.headers["organiser"],
    )
    assert extra.status_code == 422 and extra.json()["field"] == "colour"


async def test_archive_frees_the_doors(client, world):
    org = world.headers["organiser"]
    first = await _draw(client, world, box(LON, LAT - 0.01, 0.001))
    assert first.status_code == 201, first.text
    tid = first.json()["id"]
    r = await client.post(world.url(f"/turfs/{tid}/archive"), headers=org)
    assert r.status_code == 200 and r.json()["status"] == "archived"
    again = await _draw(client, world, box(LON, LAT - 0.01, 0.001), name="Again")
    assert again.status_code == 201, again.text
    assert again.json()["door_count"] == first.json()["door_count"]
    missing = await client.get(
        world.url("/turfs/00000000-0000-0000-0000-000000000000"), headers=org
    )
    assert missing.status_code == 404


async def test_drawn_turf_in_a_polling_station_gets_its_district(client, world, owner_engine):
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT d.code, ST_X(p) AS lon, ST_Y(p) AS lat FROM district d, "
                    "LATERAL ST_PointOnSurface(d.geom) p WHERE EXISTS (SELECT 1 FROM address a "
                    "WHERE ST_DWithin(a.geom, p, 0.0004)) ORDER BY d.code LIMIT 1"
                )
            )
        ).one()
    r = await _draw(client, world, box(row.lon, row.lat, 0.0004))
    assert r.status_code == 201, r.text
    assert r.json()["district_code"] == row.code
    bad = await client.post(
        world.url("/turfs"),
        json={"name": "x", "geometry": box(LON, LAT, 0.001), "district_code": "nope"},
        headers=world.headers["organiser"],
    )
    assert bad.status_code == 422 and bad.json()["field"] == "district_code"


def test_any_json_polygon_is_either_accepted_or_refused_with_a_field():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from app.errors import InvalidInput
    from app.services.field.polygon import parse_polygon

    number = st.one_of(st.floats(allow_nan=True), st.integers(-(10**7), 10**7), st.text(max_size=3))
    position = st.lists(number, min_size=0, max_size=4)
    ring = st.one_of(st.lists(position, max_size=8), number)
    geometry = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "Feature", 3]),
            "coordinates": st.one_of(
                st.lists(ring, max_size=3), st.lists(st.lists(ring, max_size=2), max_size=2), number
            ),
        }
    )

    @given(geometry)
    @settings(max_examples=300, deadline=None)
    def check(g):
        try:
            geom = parse_polygon(g)
        except InvalidInput as exc:
            assert exc.field and exc.field.startswith("geometry")
        else:
            assert geom.is_valid and geom.area > 0

    check()


async def test_two_organisers_drawing_overlapping_turfs_at_once(client, world):
    import asyncio

    a, b = await asyncio.gather(
        _draw(client, world, box(LON - 0.006, LAT, 0.0012), name="A"),
        _draw(client, world, box(LON - 0.005, LAT, 0.0012), name="B", role="admin"),
    )
    assert sorted([a.status_code, b.status_code]) == [201, 422], (a.text, b.text)
    loser = a if a.status_code == 422 else b
    assert "overlaps the active turf" in loser.json()["detail"]
