"""OGC API - Features: landing, conformance, collections, paged items, bbox, k-suppression."""

from __future__ import annotations

import pytest
from sqlalchemy import text

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


async def test_landing_links_are_absolute_and_lead_to_an_openapi_30_definition(env):
    client, world, *_ = env
    h = world.headers["analyst"]
    landing = (await client.get(world.url("/ogc"), headers=h)).json()
    # QGIS does not resolve relative links and refuses a landing page without service-desc.
    assert all(link["href"].startswith("http://") for link in landing["links"])
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    r = await client.get(desc["href"], headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = r.json()
    assert api["openapi"].startswith("3.0.")
    limit = api["components"]["parameters"]["limit"]
    assert limit["schema"]["maximum"] == 10000 and limit["schema"]["default"] == 100
    assert "/collections/{collectionId}/items" in api["paths"]
    cols = (await client.get(world.url("/ogc/collections"), headers=h)).json()["collections"]
    for col in cols:
        rels = {link["rel"]: link for link in col["links"]}
        assert rels["items"]["type"] == "application/geo+json"
        assert rels["describedBy"]["type"] == "application/schema+json"
        assert rels["http://www.opengis.net/def/rel/ogc/1.0/schema"]["href"].startswith("http://")


async def test_schema_types_match_the_values_written(env):
    client, world, area, *_ = env
    h = world.headers["analyst"]
    r = await client.get(world.url("/ogc/collections/priority-zones/schema"), headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    props = r.json()["properties"]
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert props["doors"]["type"] == "integer" and props["doors_suppressed"]["type"] == "boolean"
    assert props["v_side_score"]["type"] == "number" and props["rank"]["type"] == "integer"
    assert props["code"]["type"] == "string"
    feature_shape = (
        await client.get(
            world.url("/ogc/collections/priority-zones/schema"),
            params={"shape": "feature"},
            headers=h,
        )
    ).json()
    nested = feature_shape["properties"]["properties"]["properties"]
    assert {k: v["type"] for k, v in nested.items()} == {
        k: v["type"] for k, v in props.items() if k != "geometry"
    }
    python = {"number": float, "integer": int, "boolean": bool, "string": str}
    for cid in ("priority-zones", "tiles", "districts"):
        schema = (await client.get(world.url(f"/ogc/collections/{cid}/schema"), headers=h)).json()
        page = (await client.get(world.url(f"/ogc/collections/{cid}/items"), headers=h)).json()
        assert page["features"]
        for feature in page["features"]:
            assert set(feature["properties"]) == set(schema["properties"]) - {"geometry"}
            for name, value in feature["properties"].items():
                if value is not None:  # 0 is written 0.0 where the schema says number
                    assert type(value) is python[schema["properties"][name]["type"]], name
    bad = await client.get(
        world.url("/ogc/collections/tiles/schema"), params={"shape": "x"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["field"] == "shape"


async def test_limit_above_the_maximum_is_lowered_not_refused(env):
    client, world, *_ = env
    r = await client.get(
        world.url("/ogc/collections/districts/items"),
        params={"limit": 50000},
        headers=world.headers["analyst"],
    )
    assert r.status_code == 200
    this = next(link["href"] for link in r.json()["links"] if link["rel"] == "self")
    assert "limit=10000&" in this
    zero = await client.get(
        world.url("/ogc/collections/districts/items"),
        params={"limit": 0},
        headers=world.headers["analyst"],
    )
    assert zero.status_code == 422


async def test_priority_zone_reads_are_audited_once_per_read(env):
    client, world, area, engine, _ = env
    h = world.headers["organiser"]

    async def events() -> list:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT object, row_count FROM audit_event WHERE campaign_id = :c "
                        "AND actor_user_id = :u AND action = 'ogc.priority_zones' ORDER BY id"
                    ),
                    {"c": world.campaign_id, "u": world.users["organiser"]},
                )
            ).all()

    before = len(await events())
    items = world.url("/ogc/collections/priority-zones/items")
    first = (await client.get(items, params={"limit": 2}, headers=h)).json()
    await client.get(items, params={"limit": 2, "offset": 2}, headers=h)  # next page: no event
    await client.get(world.url("/ogc/collections/districts/items"), headers=h)  # public data
    await client.get(f"{items}/{area.code('B')}", headers=h)
    after = await events()
    assert len(after) == before + 2
    assert after[-2].row_count == first["numberMatched"]
    assert after[-1].object.endswith(f"/items/{area.code('B')}") and after[-1].row_count == 1


async def test_links_use_the_public_https_address_behind_a_proxy(env):
    """`porte serve` does not trust proxy headers: a request to the public host arrives as
    http, yet its links must be https (the token would otherwise be sent in clear)."""
    import httpx

    from app.main import create_app

    _, world, _, _, settings = env
    public = settings.model_copy(update={"public_base_url": "https://porte.example.org/p"})
    app = create_app(public)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            h = world.headers["analyst"]
            proxied = await client.get(
                world.url("/ogc/collections/districts/items"),
                params={"limit": 1},
                headers={**h, "Host": "porte.example.org"},
            )
            direct = await client.get(
                world.url("/ogc/collections/districts/items"),
                params={"limit": 1},
                headers={**h, "Host": "10.0.0.5:8000"},
            )
    finally:
        await app.state.db.dispose()
    nxt = next(link["href"] for link in proxied.json()["links"] if link["rel"] == "next")
    assert nxt.startswith(f"https://porte.example.org/p{world.url('/ogc/collections')}")
    nxt = next(link["href"] for link in direct.json()["links"] if link["rel"] == "next")
    assert nxt.startswith("http://10.0.0.5:8000/campaigns/")
