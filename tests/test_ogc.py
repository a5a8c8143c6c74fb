"""OGC API - Features: landing, conformance, collections, paged items, bbox, k-suppression."""

from __future__ import annotations

import pytest

from tests.fixtures_ranking import E0, N0, ranking_env, tile_id  # noqa: F401


@pytest.fixture
def env(ranking_env):  # noqa: F811
    return ranking_env


async def test_landing_conformance_and_collections(env):
    client, world, *_ = env
    h = world.headers["analyst"]
    landing = (await client.get(world.url("/ogc"), params={"f": "json"}, headers=h)).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    conf = (await client.get(world.url("/ogc/conformance"), headers=h)).json()
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf["conformsTo"]
    cols = (await client.get(world.url("/ogc/collections"), headers=h)).json()["collections"]
    assert {c["id"] for c in cols} == {"districts", "tiles", "priority-zones"}
    districts = next(c for c in cols if c["id"] == "districts")
    minx, miny, maxx, maxy = districts["extent"]["spatial"]["bbox"][0]
    assert minx < maxx and miny < maxy


async def test_items_are_paged_and_filtered_by_bbox(env):
    client, world, area, *_ = env
    h = world.headers["organiser"]
    r = await client.get(
        world.url("/ogc/collections/districts/items"), params={"limit": 3}, headers=h
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    page = r.json()
    ours = [f for f in page["features"] if f["id"].startswith(area.prefix)]
    assert page["numberReturned"] == 3 and page["numberMatched"] >= 4
    assert any(link["rel"] == "next" for link in page["links"])
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "offset=3" in nxt
    # bbox around district C only (inside T1): C and A (which surrounds it).
    c = (
        await client.get(world.url(f"/ogc/collections/districts/items/{area.code('C')}"), headers=h)
    ).json()
    ring = c["geometry"]["coordinates"][0][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    bbox = f"{min(xs) + 1e-5},{min(ys) + 1e-5},{max(xs) - 1e-5},{max(ys) - 1e-5}"
    hit = (
        await client.get(
            world.url("/ogc/collections/districts/items"), params={"bbox": bbox}, headers=h
        )
    ).json()
    codes = {f["id"] for f in hit["features"]}
    assert area.code("C") in codes and area.code("D") not in codes
    assert ours or page["numberMatched"] > 3
    bad = await client.get(
        world.url("/ogc/collections/districts/items"), params={"bbox": "1,2,3"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["field"] == "bbox"
    missing = await client.get(world.url("/ogc/collections/doors/items"), headers=h)
    assert missing.status_code == 404


async def test_counts_below_k_are_suppressed_in_tiles_and_priority_zones(env):
    client, world, area, *_ = env
    h = world.headers["analyst"]
    t4 = (
        await client.get(
            world.url(f"/ogc/collections/tiles/items/{tile_id(E0 + 600, N0)}"), headers=h
        )
    ).json()
    # T4: 10 households (< 11) hidden, 20 persons shown.
    assert t4["properties"]["men"] is None and t4["properties"]["men_suppressed"] is True
    assert t4["properties"]["ind"] == 20 and t4["properties"]["imputed"] is True
    zone = (
        await client.get(
            world.url(f"/ogc/collections/priority-zones/items/{area.code('C')}"), headers=h
        )
    ).json()
    assert zone["properties"]["doors"] is None and zone["properties"]["doors_suppressed"] is True
    assert zone["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert isinstance(zone["properties"]["rank"], int)


async def test_same_role_checks(env):
    client, world, *_ = env
    r = await client.get(
        world.url("/ogc/collections/priority-zones/items"), headers=world.headers["volunteer"]
    )
    assert r.status_code == 403
    assert (await client.get(world.url("/ogc"))).status_code == 401
