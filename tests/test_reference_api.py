"""GET /health, GET /districts, GET /districts/{code} on the sample database."""

from __future__ import annotations

import pytest

from tests.fixtures_imports import fetchval


async def test_health_reports_versions_counts_and_synthetic_doors(client, sample_db):
    r = await client.get("/health", headers={"Accept-Language": "en"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert int(body["database"]["postgresql"].split(".")[0]) >= 13
    assert body["database"]["postgis"].startswith("3.")
    data = body["data"]
    assert (data["tiles"], data["districts"], data["elections"]) == (504, 91, 4)
    assert data["last_election"] == "legislatives_2024_t2"
    synthetic = await fetchval(
        sample_db.owner, "SELECT count(*) FROM address WHERE source = 'synthetic'"
    )
    assert data["synthetic_doors"] == synthetic > 10_000
    assert data["doors"] == synthetic + 5760
    assert body["synthetic_doors"] is True
    assert any("SYNTHETIC" in n and "not real addresses" in n for n in body["notes"])


async def test_districts_feature_collection(client, sample_db):
    r = await client.get("/districts", params={"limit": 1000})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberMatched"] == fc["numberReturned"] == len(fc["features"]) == 91
    f = next(f for f in fc["features"] if f["id"] == "92002_0001")
    p = f["properties"]
    assert p["name"] == "001 HOTEL DE VILLE SALLE DU CONSEIL"
    assert (p["commune_code"], p["commune_name"]) == ("92002", "Antony")
    assert (p["election"], p["registered"]) == ("legislatives_2024_t2", 965)
    assert f["geometry"]["type"] == "MultiPolygon"
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    assert 2.2 < lon < 2.4 and 48.7 < lat < 48.8  # WGS84
    doors = await fetchval(
        sample_db.owner,
        "SELECT count(*) FROM address a JOIN district d ON ST_Intersects(a.geom, d.geom)"
        " WHERE d.code = '92002_0001'",
    )
    assert p["doors"] == doors > 0
    assert sum(f["properties"]["registered"] or 0 for f in fc["features"]) == await fetchval(
        sample_db.owner,
        "SELECT sum(r.inscrits) FROM election_result r JOIN election e ON e.id = r.election_id"
        " JOIN district d ON d.code = r.district_code WHERE e.name = 'legislatives_2024_t2'",
    )


async def test_districts_filters_and_paging(client):
    r = await client.get("/districts", params={"commune": "92071", "limit": 5, "offset": 10})
    fc = r.json()
    assert fc["numberMatched"] == 14 and fc["numberReturned"] == 4
    assert all(f["properties"]["commune_code"] == "92071" for f in fc["features"])
    # a small box around Sceaux's town hall holds only a few districts, all of them touching it
    r = await client.get("/districts", params={"bbox": "2.2895,48.7765,2.2915,48.7785"})
    box = r.json()["features"]
    assert 0 < len(box) < 10
    assert all(f["properties"]["commune_code"] in {"92071", "92014", "92002", "92019"} for f in box)
    r = await client.get("/districts", params={"bbox": "-10,-10,-9,-9"})
    assert r.json()["features"] == []


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "2.3,48.8,2.2,48.7", "1,2,3,4,5", "0,95,1,96"]
)
async def test_malformed_bbox_is_422_naming_bbox(client, bbox):
    r = await client.get("/districts", params={"bbox": bbox})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "bbox" and "bbox" in r.json()["detail"]


async def test_bad_paging_and_commune_are_422(client):
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"commune": "Antony"}, "commune"),
    ):
        r = await client.get("/districts", params=params)
        assert r.status_code == 422 and field in r.json()["field"], r.text


async def test_one_district_and_unknown_code(client):
    r = await client.get("/districts/92019_0001")
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["properties"]["commune_name"] == "Châtenay-Malabry"
    assert [x["election"] for x in f["properties"]["results"]] == [
        "legislatives_2022_t2",
        "europeennes_2024",
        "legislatives_2024_t1",
        "legislatives_2024_t2",
    ]
    r = await client.get("/districts/92019_0020")  # results but no contour
    assert r.status_code == 404
    assert "92019_0020" in r.json()["detail"] and r.json()["status"] == 404


async def test_empty_page_still_counts_matches(client):
    r = await client.get("/districts", params={"commune": "92071", "offset": 50})
    assert r.json()["numberMatched"] == 14 and r.json()["features"] == []


async def test_health_says_when_the_database_is_unreachable(sample_db):
    import socket

    import httpx

    from app.main import create_app
    from tests.conftest import DbUrls, make_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    dead = f"postgresql+asyncpg://porte_app:x@127.0.0.1:{port}/nowhere"
    app = create_app(make_settings(DbUrls("nowhere", dead, dead)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/health")
    await app.state.db.dispose()
    assert r.status_code == 503
    assert r.json()["status"] == "error" and "porte db start" in r.json()["detail"]
