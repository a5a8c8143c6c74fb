"""Ranking: known orders on the hand-built area, contributions that add up, weights, caching."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.factories import make_world
from tests.fixtures_ranking import ranking_env  # noqa: F401

EN = {"Accept-Language": "en"}  # these tests read English messages (French is the default)


@pytest.fixture
def env(ranking_env):  # noqa: F811
    return ranking_env


def _order(body: dict) -> list[str]:
    return [d["code"].split("_")[1] for d in body["districts"]]


async def test_mobilisation_preset_gives_the_hand_computed_order(env):
    """Mobilisation = side_score x 1 + abstention_rate x 1 (supporters: none; no round: no damping).

    abstention: A .5, B .3, C .4, D .2 -> mean .35, sd = sqrt(.0125) = .1118
        z: A +1.342, B -0.447, C +0.447, D -1.342
    side (ENS) share of votes cast: A 25/50 = .5, B 35/70 = .5, C 18/60 = .3, D 56/80 = .7
        -> mean .5, sd = sqrt(.02) = .1414;  z: A 0, B 0, C -1.414, D +1.414
    score: A +1.342, D +0.073, B -0.447, C -0.967  => order A, D, B, C
    """
    client, world, area, _, _ = env
    r = await client.get(
        world.url("/ranking"),
        params={"preset": "mobilisation", "side": "ENS"},
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert _order(body) == ["A", "D", "B", "C"]
    scores = {d["code"].split("_")[1]: d["score"] for d in body["districts"]}
    assert scores["A"] == pytest.approx(1.3416, abs=1e-3)
    assert scores["D"] == pytest.approx(1.4142 - 1.3416, abs=1e-3)
    assert scores["B"] == pytest.approx(-0.4472, abs=1e-3)
    assert scores["C"] == pytest.approx(0.4472 - 1.4142, abs=1e-3)
    assert [d["rank"] for d in body["districts"]] == [1, 2, 3, 4]


async def test_persuasion_preset_gives_the_hand_computed_order(env):
    """Persuasion = closeness x 1 + swing x 0.5 + registered x 0.25.

    closeness = 1 - |ENS - best rival| / votes cast: A 1 - 5/50 = .9, B 1 - 5/70 = .9286,
    C 1 - 12/60 = .8, D 1 - 36/80 = .55 -> mean .7946, sd .1491;
        z: A +.707, B +.898, C +.036, D -1.641
    swing from "fixture 99001 reference" (the other loaded election with ENS, loaded earlier):
    ENS share now A .5, B .5, C .3; then A .30, B .48, C .34, D no result
        -> |change| in points A 20, B 2, C 4, D missing (z = 0): mean 8.667, sd 8.055;
        z: A +1.407, B -.828, C -.579
    Registered is 100 everywhere: no spread, contributes 0.
    score: A +1.410, B +.484, C -.254, D -1.641  => order A, B, C, D
    (without swing it would be B, A, C, D: tests/test_ranking_swing.py)
    """
    client, world, _, _, _ = env
    r = await client.get(
        world.url("/ranking"),
        params={"preset": "persuasion", "side": "ENS"},
        headers={**world.headers["organiser"], **EN},
    )
    body = r.json()
    assert _order(body) == ["A", "B", "C", "D"]
    scores = {d["code"].split("_")[1]: d["score"] for d in body["districts"]}
    assert scores == pytest.approx({"A": 1.4101, "B": 0.4845, "C": -0.2537, "D": -1.6409}, abs=1e-3)
    report = {f["name"]: f for f in body["factors"]}
    assert report["registered"]["status"] == "no_variation"
    assert report["closeness"]["status"] == "used"
    assert report["swing"]["status"] == "used"


async def test_contributions_add_up_to_the_score(env):
    client, world, _, _, _ = env
    for preset in ("mobilisation", "persuasion", "coverage"):
        r = await client.get(
            world.url("/ranking"),
            params={"preset": preset, "side": "ENS"},
            headers={**world.headers["admin"], **EN},
        )
        for d in r.json()["districts"]:
            total = sum(c["contribution"] for c in d["contributions"])
            assert total == pytest.approx(d["score"], abs=1e-9)
            for c in d["contributions"]:
                assert c["contribution"] == pytest.approx(
                    c["weight"] * c["standardised"] * d["damping"], abs=1e-12
                )


async def test_changing_one_weight_moves_the_expected_districts(env):
    """Dropping abstention leaves the side's score alone: D (70 %) rises to first, A falls."""
    client, world, _, _, _ = env
    h = {**world.headers["organiser"], **EN}
    r = await client.put(
        world.url("/weights"),
        json={"preset": "mobilisation", "weights": {"abstention_rate": 0}, "side": "ENS"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = (await client.get(world.url("/ranking"), headers=h)).json()
    assert body["weights_from"] == "campaign weights"
    assert _order(body) == ["D", "A", "B", "C"]
    r = await client.put(
        world.url("/weights"),
        json={"weights": {"side_score": 1, "abstention_rate": 1}, "side": "ENS"},
        headers=h,
    )
    assert _order((await client.get(world.url("/ranking"), headers=h)).json())[0] == "A"


async def test_unknown_factor_is_refused_naming_it(env):
    client, world, _, _, _ = env
    r = await client.put(
        world.url("/weights"),
        json={"weights": {"turnout_magic": 2}},
        headers={**world.headers["admin"], **EN},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "weights.turnout_magic"
    assert "turnout_magic" in body["detail"]
    r = await client.get(
        world.url("/ranking"), params={"preset": "nope"}, headers={**world.headers["admin"], **EN}
    )
    assert r.status_code == 422 and r.json()["field"] == "preset"


async def test_absent_data_is_left_out_and_said(env):
    """No side chosen: side factors are absent; no canvass round: coverage absent."""
    client, world, _, _, engine = env[0], env[1], env[2], env[3], env[3]
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM ranking_settings WHERE campaign_id = :c"), {"c": world.campaign_id}
        )
    r = await client.get(
        world.url("/ranking"),
        params={"preset": "mobilisation"},
        headers={**world.headers["analyst"], **EN},
    )
    report = {f["name"]: f for f in r.json()["factors"]}
    assert report["side_score"]["status"] == "absent"
    assert "no side chosen" in report["side_score"]["reason"]
    assert report["coverage"]["status"] == "absent"
    assert report["abstention_rate"]["status"] == "used"
    # The ranking still works on what is there: abstention alone -> A, C, B, D.
    assert _order(r.json()) == ["A", "C", "B", "D"]


async def test_district_breakdown_and_roles(env):
    client, world, area, _, _ = env
    r = await client.get(
        world.url(f"/districts/{area.code('C')}"),
        params={"preset": "mobilisation", "side": "ENS"},
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 200, r.text
    d = r.json()["district"]
    assert d["rank"] == 4
    # C has 4 doors (< k = 11): the count is blank and flagged, the score still explained.
    assert d["counts"]["doors"] is None and d["counts"]["doors_suppressed"] is True
    missing = await client.get(
        world.url("/districts/nope"), headers={**world.headers["analyst"], **EN}
    )
    assert missing.status_code == 404
    vol = await client.get(world.url("/ranking"), headers={**world.headers["volunteer"], **EN})
    assert vol.status_code == 403
    analyst_put = await client.put(
        world.url("/weights"),
        json={"weights": {"coverage": -1}},
        headers={**world.headers["analyst"], **EN},
    )
    assert analyst_put.status_code == 403


async def test_cache_is_used_then_invalidated_by_visits(env):
    """A second request is served from the cache; visits in the current round invalidate it
    and damp the visited district (k = 2 here so that 3 visited doors count). Visited doors are
    the ones analysts may read in the progress (doors of active turfs, app.disclosure)."""
    client, _, area, engine, settings = env
    world = await make_world(engine, settings, k=2)
    h = {**world.headers["organiser"], **EN}
    params = {"preset": "mobilisation", "side": "ENS"}
    first = (await client.get(world.url("/ranking"), params=params, headers=h)).json()
    second = (await client.get(world.url("/ranking"), params=params, headers=h)).json()
    assert first["cached"] is False and second["cached"] is True
    async with engine.begin() as conn:
        rid = (
            await conn.execute(
                text("INSERT INTO canvass_round (campaign_id, number) VALUES (:c, 1) RETURNING id"),
                {"c": world.campaign_id},
            )
        ).scalar_one()
        doors = (
            (
                await conn.execute(
                    text(
                        "SELECT address_id FROM door_district WHERE district_code = :d "
                        "ORDER BY 1 LIMIT 3"
                    ),
                    {"d": area.code("C")},
                )
            )
            .scalars()
            .all()
        )
        turf = (
            await conn.execute(
                text(
                    "INSERT INTO turf (campaign_id, name, district_code, geom) SELECT :c, 'C', "
                    "code, geom FROM district WHERE code = :d RETURNING id"
                ),
                {"c": world.campaign_id, "d": area.code("C")},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO turf_door (campaign_id, turf_id, address_id, seq) "
                "SELECT :c, :t, address_id, row_number() OVER (ORDER BY address_id) "
                "FROM door_district WHERE district_code = :d"
            ),
            {"c": world.campaign_id, "t": turf, "d": area.code("C")},
        )
        for door in doors:
            await conn.execute(
                text(
                    "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, "
                    "visited_at) VALUES (:c, :i, :a, :r, 'not_home', now())"
                ),
                {"c": world.campaign_id, "i": uuid.uuid4(), "a": door, "r": rid},
            )
    third = (await client.get(world.url("/ranking"), params=params, headers=h)).json()
    assert third["cached"] is False
    c = next(d for d in third["districts"] if d["code"] == area.code("C"))
    assert c["damping"] == pytest.approx(1 - 3 / 4)
    assert c["counts"]["visited_doors"] == 3
    assert sum(x["contribution"] for x in c["contributions"]) == pytest.approx(c["score"])


async def test_real_sample_ranking_with_a_side_in_a_loaded_election(client, world):
    """On the 92-13 sample: legislative 2024 round 1, our side = ENS (BREGEON's nuance)."""
    r = await client.get(
        world.url("/ranking"),
        params={
            "preset": "mobilisation",
            "election": "legislatives_2024_t1",
            "side": "ENS",
            "limit": 5,
        },
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_districts"] == 91 and len(body["districts"]) == 5
    assert body["election"]["name"] == "legislatives_2024_t1"
    report = {f["name"]: f for f in body["factors"]}
    assert report["side_score"]["status"] == "used"
    assert report["abstention_rate"]["status"] == "used"
    assert 0.05 < report["side_score"]["mean"] < 0.8
    for d in body["districts"]:
        assert sum(c["contribution"] for c in d["contributions"]) == pytest.approx(d["score"])
    scores = [d["score"] for d in body["districts"]]
    assert scores == sorted(scores, reverse=True)
