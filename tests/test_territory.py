"""Campaign territory: 422 for unknown codes, every listed surface limited to it, audited changes,
and constituency files in their three shapes (contours, polling stations, communes)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from app.services.reference.codes import departement_of, normalise_constituency
from tests.factories import bearer, make_user, make_world
from tests.fixtures_ranking import two_areas_env  # noqa: F401

SCEAUX = "92071"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("92-13", "92-13"),
        ("9213", "92-13"),
        ("92013", "92-13"),
        (" 92 13 ", "92-13"),
        ("2A01", "2A-01"),
        ("97101", "971-01"),
        ("971-1", "971-01"),
        ("ZZ11", "ZZ-11"),
        ("1-03", "01-03"),
        ("92-00", None),
        ("9A13", None),
        ("", None),
        ("92", None),
    ],
)
def test_constituency_codes_are_read_in_every_published_form(raw, code):
    assert normalise_constituency(raw) == code


def test_departement_of_a_commune():
    assert [departement_of(c) for c in ("92002", "2A004", "97101", "01004")] == [
        "92",
        "2A",
        "971",
        "01",
    ]


async def test_unknown_codes_are_refused_naming_them(client, world):
    h = world.headers["admin"]
    cases = [
        ({"kind": "communes", "codes": [SCEAUX, "75056", "13055"]}, ["75056", "13055"]),
        ({"kind": "constituency", "codes": ["92-13", "75-01"]}, ["75-01"]),
        ({"kind": "departement", "codes": ["92", "2A"]}, ["2A"]),
        ({"kind": "constituency", "codes": ["92-x"]}, ["92-X"]),
        ({"kind": "communes", "codes": ["920"]}, ["920"]),
    ]
    for body, named in cases:
        r = await client.put(world.url("/territory"), json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        problem = r.json()
        assert problem["field"] == "codes"
        for code in named:
            assert code in problem["detail"]
        assert SCEAUX not in problem["detail"]
    r = await client.put(
        world.url("/territory"), json={"kind": "country", "codes": ["92"]}, headers=h
    )
    assert r.status_code == 422 and r.json()["field"] == "codes"
    r = await client.put(world.url("/territory"), json={"kind": "canton", "codes": []}, headers=h)
    assert r.status_code == 422
    # nothing was changed by the refused requests
    now = (await client.get(world.url("/territory"), headers=h)).json()
    assert now["kind"] == "country" and now["districts"] == 91
    assert (
        await client.put(
            world.url("/territory"),
            json={"kind": "communes", "codes": [SCEAUX]},
            headers=world.headers["organiser"],
        )
    ).status_code == 403


async def test_constituency_and_departement_territories(client, world):
    h = world.headers["admin"]
    r = await client.put(
        world.url("/territory"), json={"kind": "constituency", "codes": ["9213"]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json() == {**r.json(), "kind": "constituency", "codes": ["92-13"], "districts": 91}
    assert r.json()["communes"] == 4
    r = await client.put(
        world.url("/territory"), json={"kind": "departement", "codes": ["92"]}, headers=h
    )
    assert r.json()["districts"] == 91
    r = await client.put(
        world.url("/territory"), json={"kind": "communes", "codes": [SCEAUX, "92014"]}, headers=h
    )
    assert r.json()["districts"] == 28 and r.json()["communes"] == 2


async def test_territory_changes_are_audited(client, world, owner_engine):
    h = world.headers["admin"]
    await client.put(
        world.url("/territory"), json={"kind": "communes", "codes": [SCEAUX]}, headers=h
    )
    await client.put(world.url("/territory"), json={"kind": "country"}, headers=h)
    events = (
        await client.get(
            world.url("/audit"), params={"action": "access.campaign.territory"}, headers=h
        )
    ).json()
    assert [e["row_count"] for e in events] == [91, 14]  # newest first: districts covered
    assert {e["actor_user_id"] for e in events} == {str(world.users["admin"])}
    async with owner_engine.connect() as conn:
        details = (
            (
                await conn.execute(
                    text(
                        "SELECT details FROM audit_event WHERE campaign_id = :c "
                        "AND action = 'access.campaign.territory' ORDER BY id"
                    ),
                    {"c": world.campaign_id},
                )
            )
            .scalars()
            .all()
        )
    assert details[0] == {
        "from": {"kind": "country", "codes": []},
        "to": {"kind": "communes", "codes": [SCEAUX]},
    }
    assert details[1]["to"] == {"kind": "country", "codes": []}


async def test_territory_at_campaign_creation(client, owner_engine, settings):
    h = bearer(settings, await make_user(owner_engine, can_create_campaigns=True))
    body = {"name": "Municipales Sceaux", "election_date": "2032-03-14"}
    bad = await client.post(
        "/campaigns",
        json={**body, "territory": {"kind": "communes", "codes": ["75056"]}},
        headers=h,
    )
    assert bad.status_code == 422 and "75056" in bad.json()["detail"]
    r = await client.post(
        "/campaigns", json={**body, "territory": {"kind": "communes", "codes": [SCEAUX]}}, headers=h
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    t = (await client.get(f"/campaigns/{cid}/territory", headers=h)).json()
    assert t["kind"] == "communes" and t["districts"] == 14


async def test_every_listed_surface_is_limited_to_the_territory(client, world, owner_engine):
    """A municipal campaign on a database holding four communes sees only its own."""
    h, org = world.headers["analyst"], world.headers["organiser"]
    # Turfs in Sceaux and in Antony, cut while the territory is the whole country.
    for code in (f"{SCEAUX}_0001", "92002_0001"):
        cut = await client.post(
            world.url(f"/districts/{code}/cut"), json={"doors_per_turf": 60}, headers=org
        )
        assert cut.status_code == 201, cut.text
    r = await client.put(
        world.url("/territory"),
        json={"kind": "communes", "codes": [SCEAUX]},
        headers=world.headers["admin"],
    )
    assert r.status_code == 200 and r.json()["districts"] == 14

    ranking = (await client.get(world.url("/ranking"), headers=h)).json()
    assert ranking["total_districts"] == 14
    assert ranking["territory"] == {"kind": "communes", "codes": [SCEAUX]}
    assert {d["commune_code"] for d in ranking["districts"]} == {SCEAUX}
    assert (await client.get(world.url("/districts/92002_0001"), headers=h)).status_code == 404
    assert (await client.get(world.url(f"/districts/{SCEAUX}_0002"), headers=h)).status_code == 200

    export = await client.get(world.url("/exports/priority-zones.geojson"), headers=h)
    codes = {f["properties"]["code"] for f in export.json()["features"]}
    assert len(codes) == 14 and all(c.startswith(SCEAUX) for c in codes)

    for collection in ("districts", "priority-zones"):
        page = (
            await client.get(
                world.url(f"/ogc/collections/{collection}/items"),
                params={"limit": 100},
                headers=h,
            )
        ).json()
        assert page["numberMatched"] == 14, collection
        assert all(f["id"].startswith(SCEAUX) for f in page["features"])
    tiles = (
        await client.get(
            world.url("/ogc/collections/tiles/items"), params={"limit": 10000}, headers=h
        )
    ).json()
    async with owner_engine.connect() as conn:
        expected = set(
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT al.tile_id FROM district_alloc al JOIN district d "
                        "ON d.code = al.district_code WHERE d.commune_code = :c"
                    ),
                    {"c": SCEAUX},
                )
            ).scalars()
        )
    assert {f["id"] for f in tiles["features"]} == expected and 0 < len(expected) < 500
    meta = (await client.get(world.url("/ogc/collections/districts"), headers=h)).json()
    west, south, east, north = meta["extent"]["spatial"]["bbox"][0]
    assert 2.27 < west < east < 2.32 and 48.76 < south < north < 48.79  # Sceaux only

    progress = (await client.get(world.url("/progress"), headers=org)).json()
    assert [d["district_code"] for d in progress["districts"]] == [f"{SCEAUX}_0001"]
    assert {t["district_code"] for t in progress["turfs"]} == {f"{SCEAUX}_0001"}
    assert progress["campaign"]["doors"] == sum(t["doors"] for t in progress["turfs"])

    agg = (await client.get(world.url("/supporters/aggregates"), headers=h)).json()
    assert len(agg["cells"]) == 14 and all(c["key"].startswith(SCEAUX) for c in agg["cells"])

    outside = await client.post(
        world.url("/districts/92002_0002/cut"), json={"doors_per_turf": 60}, headers=org
    )
    assert outside.status_code == 422 and "92002_0002" in outside.json()["detail"]


async def test_communes_is_no_longer_a_weights_setting(client, world):
    r = await client.put(
        world.url("/weights"),
        json={"preset": "mobilisation", "communes": [SCEAUX]},
        headers=world.headers["admin"],
    )
    assert r.status_code == 422
    assert r.json()["field"] == "communes" and "/territory" in r.json()["detail"]


# ---------------------------------------------------------------- constituency files
def _square(x0: float, y0: float, x1: float, y1: float) -> list:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


async def test_constituency_files_in_their_three_shapes(two_areas_env, tmp_path):  # noqa: F811
    """Contours (a district belongs to the one holding its point on surface), a polling-station
    list (exact, it wins), a commune list (split communes place nothing). Hand-made TEST files
    over the two hand-built areas (districts 9900x_A..D, EPSG:3035)."""
    from app.errors import ImportFailed
    from app.services.reference.imports.constituencies import import_constituencies
    from tests.fixtures_ranking import E0, N0

    client, area, other, engine, settings, owner = two_areas_env
    contours = tmp_path / "circonscriptions-test.geojson"
    features = [
        ("9901", "West", _square(E0 - 10, N0 - 10, E0 + 300, N0 + 210)),
        ("9902", "East", _square(E0 + 300, N0 - 10, E0 + 800, N0 + 210)),
    ]
    contours.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3035"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"codeCirconscription": code, "nomCirconscription": name},
                        "geometry": {"type": "Polygon", "coordinates": ring},
                    }
                    for code, name, ring in features
                ],
            }
        )
    )
    rep = await import_constituencies(owner, contours)
    assert rep.details["content"] == "contours" and rep.details["constituencies"] == 2
    stations = tmp_path / "bureaux-test.csv"
    stations.write_text(
        "codeCirconscription;codeBureauVote\n99-03;99001_B\n99-03;99001_D\n", encoding="utf-8"
    )
    rep = await import_constituencies(owner, stations)
    assert rep.details["content"] == "district"
    communes = tmp_path / "communes-test.csv"
    communes.write_text(
        "CODE DPT,CODE COMMUNE,CODE CIRC LEGISLATIVE\n99,002,4\n99,001,4\n99,001,5\n",
        encoding="utf-8",
    )
    rep = await import_constituencies(owner, communes)
    assert rep.details["content"] == "commune"
    async with engine.connect() as conn:
        placed = dict(
            (
                await conn.execute(
                    text(
                        "SELECT district_code, constituency_code || ':' || method "
                        "FROM district_constituency"
                    )
                )
            ).all()
        )
    # A and C (inside A's box) by the western contour; B and D by the station list, which wins
    # over the eastern contour; 99002 (outside the contours) by its commune, listed once; 99001
    # is split between 99-04 and 99-05: its commune places nothing.
    assert placed[area.code("A")] == placed[area.code("C")] == "99-01:contour"
    assert placed[area.code("B")] == placed[area.code("D")] == "99-03:district"
    assert {placed[other.code(x)] for x in "ABCD"} == {"99-04:commune"}

    w = await make_world(engine, settings)
    r = await client.put(
        w.url("/territory"),
        json={"kind": "constituency", "codes": ["99-03"]},
        headers=w.headers["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["districts"] == 2
    ranked = (await client.get(w.url("/ranking"), headers=w.headers["analyst"])).json()
    assert {d["code"] for d in ranked["districts"]} == {area.code("B"), area.code("D")}
    # Re-importing the station list without D moves D back to the eastern contour, and the
    # campaign's territory follows at its next request.
    stations.write_text("codeCirconscription;codeBureauVote\n99-03;99001_B\n", encoding="utf-8")
    await import_constituencies(owner, stations)
    ranked = (await client.get(w.url("/ranking"), headers=w.headers["analyst"])).json()
    assert {d["code"] for d in ranked["districts"]} == {area.code("B")}

    bad = tmp_path / "bad.csv"
    bad.write_text("codeCirconscription;codeBureauVote\n99-00;99001_A\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as exc:
        await import_constituencies(owner, bad)
    assert "99-00" in exc.value.detail  # the rejected code is named (in the reader's language)
