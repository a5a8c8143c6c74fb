"""Swing factor: change of our side's share between a reference election and the chosen one."""

from __future__ import annotations

import pandas as pd
import pytest

from app.config import REPO_ROOT
from tests.factories import make_world
from tests.fixtures_ranking import ranking_env  # noqa: F401

EN = {"Accept-Language": "en"}  # these tests read English messages (French is the default)

SAMPLE = REPO_ROOT / "data" / "sample_insee"


@pytest.fixture
def env(ranking_env):  # noqa: F811
    return ranking_env


def _order(body: dict) -> list[str]:
    return [d["code"].split("_")[1] for d in body["districts"]]


def _by_letter(body: dict) -> dict[str, dict]:
    return {d["code"].split("_")[1]: d for d in body["districts"]}


async def test_swing_hand_computed_values_and_their_effect_on_persuasion(env):
    """Swing on the hand-built area (fixtures_ranking.py), side ENS.

    ENS share of votes cast, chosen election "fixture 99001": A 25/50 = .50, B 35/70 = .50,
    C 18/60 = .30, D 56/80 = .70; reference "fixture 99001 reference" (loaded a day earlier, the
    only other election with ENS, so the default): A 18/60 = .30, B 24/50 = .48, C 17/50 = .34,
    D no result.
    signed change (points, positive = ENS gained): A +20, B +2, C -4, D none
    factor swing = |change|: A 20, B 2, C 4, D missing (z = 0, flagged)
        mean 26/3 = 8.667, sd = sqrt((11.333² + 6.667² + 4.667²) / 3) = 8.055
        z: A +1.407, B -0.828, C -0.579, D 0
    persuasion (closeness 1, swing 0.5, registered 0.25; closeness z A +.707, B +.898,
    C +.036, D -1.641; registered has no spread):
        with swing    A +1.410, B +.484, C -.254, D -1.641  -> A, B, C, D
        swing at 0    A +.707,  B +.898, C +.036, D -1.641  -> B, A, C, D
    A, where ENS gained 20 points, overtakes B, the closest result.
    """
    client, world, area, engine, settings = env
    h = {**world.headers["analyst"], **EN}
    r = await client.get(
        world.url("/ranking"), params={"preset": "persuasion", "side": "ENS"}, headers=h
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["swing_from"]["name"] == "fixture 99001 reference"
    assert "none chosen" in body["swing_from"]["why"]
    d = _by_letter(body)
    assert d["A"]["swing_change"] == pytest.approx(20.0)
    assert d["B"]["swing_change"] == pytest.approx(2.0)
    assert d["C"]["swing_change"] == pytest.approx(-4.0)
    assert d["D"]["swing_change"] is None
    assert {k: v["values"]["swing"] for k, v in d.items()} == pytest.approx(
        {"A": 20.0, "B": 2.0, "C": 4.0, "D": None}
    )
    swing = {k: next(c for c in v["contributions"] if c["factor"] == "swing") for k, v in d.items()}
    assert {k: c["standardised"] for k, c in swing.items()} == pytest.approx(
        {"A": 1.4069, "B": -0.8276, "C": -0.5793, "D": 0.0}, abs=1e-3
    )
    assert swing["D"]["missing"] is True and swing["A"]["missing"] is False
    assert swing["A"]["weight"] == 0.5
    report = {f["name"]: f for f in body["factors"]}
    assert report["swing"]["status"] == "used"
    assert report["swing"]["districts_missing"] == 1
    assert "absolute" in report["swing"]["unit"]
    assert _order(body) == ["A", "B", "C", "D"]
    for x in body["districts"]:
        assert sum(c["contribution"] for c in x["contributions"]) == pytest.approx(x["score"])

    # The same reference named in the request gives the same values.
    named = await client.get(
        world.url("/ranking"),
        params={"preset": "persuasion", "side": "ENS", "swing_from": "fixture 99001 reference"},
        headers=h,
    )
    assert named.json()["swing_from"]["why"] == "chosen in the request"
    assert _order(named.json()) == ["A", "B", "C", "D"]

    # The effect of swing: at weight 0 the persuasion order is closeness alone, B first.
    fresh = await make_world(engine, settings)
    put = await client.put(
        fresh.url("/weights"),
        json={"preset": "persuasion", "weights": {"swing": 0}, "side": "ENS"},
        headers={**fresh.headers["organiser"], **EN},
    )
    assert put.status_code == 200, put.text
    without = (
        await client.get(fresh.url("/ranking"), headers={**fresh.headers["analyst"], **EN})
    ).json()
    assert _order(without) == ["B", "A", "C", "D"]
    assert {k: v["score"] for k, v in _by_letter(without).items()} == pytest.approx(
        {"A": 0.7067, "B": 0.8983, "C": 0.0359, "D": -1.6409}, abs=1e-3
    )


async def test_swing_reference_in_campaign_settings_and_bad_references(env):
    """PUT /weights stores swing_from; unknown or same-as-chosen references are 422."""
    client, _, _, engine, settings = env
    world = await make_world(engine, settings)
    h = {**world.headers["organiser"], **EN}
    r = await client.put(
        world.url("/weights"),
        json={"preset": "persuasion", "side": "ENS", "swing_from": "fixture 99001 reference"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert (await client.get(world.url("/weights"), headers=h)).json()["swing_from_id"] is not None
    body = (await client.get(world.url("/ranking"), headers=h)).json()
    assert body["swing_from"] == {
        "id": r.json()["swing_from_id"],
        "name": "fixture 99001 reference",
        "why": "campaign setting",
    }
    assert _order(body) == ["A", "B", "C", "D"]

    bad = await client.get(
        world.url("/ranking"), params={"swing_from": "no such election"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["field"] == "swing_from"
    same = await client.get(
        world.url("/ranking"),
        params={"election": "fixture 99001", "swing_from": "fixture 99001"},
        headers=h,
    )
    assert same.status_code == 422 and same.json()["field"] == "swing_from"
    bad_put = await client.put(
        world.url("/weights"), json={"preset": "persuasion", "swing_from": "nope"}, headers=h
    )
    assert bad_put.status_code == 422 and bad_put.json()["field"] == "swing_from"


def _ens_share_2022() -> pd.Series:
    """ENS share of votes cast per station, legislatives 2022 T2 (long: a row per candidate)."""
    d = pd.read_csv(SAMPLE / "legislatives_2022_t2_bv_9213.csv")
    ens = d[d["Nuance"] == "ENS"].set_index("codeBureauVote")
    return ens["Voix"] / ens["Exprimés"]


def _ens_share_2024_t2() -> pd.Series:
    """ENS share of votes cast per station, legislatives 2024 T2 (wide format)."""
    w = pd.read_csv(SAMPLE / "legislatives_2024_t2_bv_9213.csv").set_index("codeBureauVote")
    voix = pd.Series(0.0, index=w.index)
    for i in range(1, 10):
        if f"Nuance candidat {i}" not in w:
            break
        voix += w[f"Voix {i}"].where(w[f"Nuance candidat {i}"] == "ENS", 0).fillna(0)
    return voix / w["Exprimés"]


async def test_real_sample_swing_of_ens_between_2022_and_2024(client, world):
    """92-13 sample: ENS (BREGEON) stood in the second rounds of both 2022 and 2024.

    The swing of each station is recomputed here from the two CSV files; a station without a
    2022 result is missing (counted as the mean, flagged).
    """
    r = await client.get(
        world.url("/ranking"),
        params={
            "preset": "persuasion",
            "election": "legislatives_2024_t2",
            "swing_from": "legislatives_2022_t2",
            "side": "ENS",
        },
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["swing_from"]["name"] == "legislatives_2022_t2"
    report = {f["name"]: f for f in body["factors"]}
    assert report["swing"]["status"] == "used" and report["swing"]["weight"] == 0.5
    expected = (100 * (_ens_share_2024_t2() - _ens_share_2022())).dropna()
    checked = 0
    for d in body["districts"]:
        change = d["swing_change"]
        if d["code"] in expected.index:
            assert change == pytest.approx(expected[d["code"]], abs=1e-9), d["code"]
            assert d["values"]["swing"] == pytest.approx(abs(expected[d["code"]]), abs=1e-9)
            checked += 1
        else:
            assert change is None and d["values"]["swing"] is None
        assert sum(c["contribution"] for c in d["contributions"]) == pytest.approx(d["score"])
    assert checked == report["swing"]["districts_with_value"] > 80
    assert report["swing"]["mean"] == pytest.approx(
        expected[[d["code"] for d in body["districts"] if d["code"] in expected.index]].abs().mean()
    )

    # Default reference: the most recent other loaded election with ENS (2024 first round).
    default = await client.get(
        world.url("/ranking"),
        params={"preset": "persuasion", "election": "legislatives_2024_t2", "side": "ENS"},
        headers={**world.headers["analyst"], **EN},
    )
    assert default.json()["swing_from"]["name"] == "legislatives_2024_t1"


async def test_real_sample_swing_absent_when_no_reference_has_the_side(client, world):
    """NUP (2022's left alliance) stood only in 2022; the 2024 European lists are LENS, not ENS."""
    r = await client.get(
        world.url("/ranking"),
        params={"preset": "persuasion", "election": "legislatives_2022_t2", "side": "NUP"},
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    report = {f["name"]: f for f in body["factors"]}
    assert report["swing"]["status"] == "absent"
    assert "no other loaded election has a candidate of the side 'NUP'" in report["swing"]["reason"]
    assert report["closeness"]["status"] == "used"
    assert body["swing_from"]["name"] is None
    for d in body["districts"]:
        assert d["swing_change"] is None
        assert all(c["factor"] != "swing" or c["contribution"] == 0 for c in d["contributions"])

    named = await client.get(
        world.url("/ranking"),
        params={
            "preset": "persuasion",
            "election": "legislatives_2024_t2",
            "swing_from": "europeennes_2024",
            "side": "ENS",
        },
        headers={**world.headers["analyst"], **EN},
    )
    assert named.status_code == 200, named.text
    swing = next(f for f in named.json()["factors"] if f["name"] == "swing")
    assert swing["status"] == "absent"
    assert "'ENS' has no candidate in europeennes_2024" in swing["reason"]
