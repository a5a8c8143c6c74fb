"""The ranking's side found by name (issue 19, "Parties by name"): ``?side=`` and ``PUT
/weights {"side": ...}`` take a nuance code, a party or list name, or a candidate's name, and
compare the codes and labels it resolves to; an unknown or ambiguous side is a 422 naming the
field and listing the close matches. On the real 92-13 sample results."""

from __future__ import annotations

import pytest

ELECTION = "legislatives_2024_t1"
EN = {"Accept-Language": "en"}


def _factor(body: dict, name: str) -> dict:
    return next(f for f in body["factors"] if f["name"] == name)


@pytest.mark.parametrize(
    ("typed", "tokens"),
    [
        ("Ensemble", {"ENS", "LENS"}),  # the party's name: its candidates and its lists
        ("ensemble", {"ENS", "LENS"}),
        ("Brégeon", {"BREGEON MAUD"}),  # a candidate's name, accents and case aside
        ("ENS", {"ENS"}),
    ],
)
async def test_a_side_given_by_name_ranks_on_its_votes(client, world, typed, tokens):
    h = world.headers["analyst"]
    params = {"election": ELECTION, "preset": "mobilisation", "limit": 3}
    r = await client.get(world.url("/ranking"), params={**params, "side": typed}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {t.strip() for t in body["side"].split(",")} == tokens
    assert body["side_asked"] == typed
    assert _factor(body, "side_score")["status"] == "used", _factor(body, "side_score")
    # the same votes as the code itself: Maud Brégeon was Ensemble's candidate here
    by_code = await client.get(world.url("/ranking"), params={**params, "side": "ENS"}, headers=h)
    codes = [d["code"] for d in by_code.json()["districts"]]
    assert [d["code"] for d in body["districts"]] == codes
    assert body["districts"][0]["score"] == pytest.approx(by_code.json()["districts"][0]["score"])
    # the district's explanation takes the same names
    code = body["districts"][0]["code"]
    one = await client.get(
        world.url(f"/districts/{code}"), params={"election": ELECTION, "side": typed}, headers=h
    )
    assert one.status_code == 200 and one.json()["district"]["rank"] == 1


async def test_an_unknown_side_is_a_422_with_the_close_matches(client, world):
    r = await client.get(
        world.url("/ranking"),
        params={"election": ELECTION, "side": "Rassemblemnt nationl"},
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "side"
    assert any(m.startswith("Rassemblement national") for m in body["close_matches"])
    assert "Rassemblemnt nationl" in body["detail"] and "Rassemblement national" in body["detail"]
    # French by default
    fr = await client.get(
        world.url("/ranking"),
        params={"election": ELECTION, "side": "Rassemblemnt nationl"},
        headers=world.headers["analyst"],
    )
    assert fr.status_code == 422 and "Rassemblement national" in fr.json()["detail"]
    assert fr.json()["detail"] != body["detail"]


async def test_an_ambiguous_side_is_a_422_listing_what_it_could_mean(client, world):
    """ "Divers" names the lists of several parties (centre, right, left, various): which one?"""
    r = await client.get(
        world.url("/exports/priority-zones.csv"),
        params={"side": "Divers"},
        headers={**world.headers["analyst"], **EN},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "side" and "several parties" in body["detail"]
    meant = body["close_matches"]
    assert any("DVC" in m for m in meant) and any("LDVD" in m for m in meant), meant


async def test_the_campaign_side_is_stored_as_it_resolves(client, world):
    org = world.headers["organiser"]
    r = await client.put(
        world.url("/weights"), json={"preset": "mobilisation", "side": "Ensemble"}, headers=org
    )
    assert r.status_code == 200, r.text
    assert r.json()["side_asked"] == "Ensemble"
    stored = (await client.get(world.url("/weights"), headers=org)).json()
    assert {t.strip() for t in stored["side"].split(",")} == {"ENS", "LENS"}
    ranked = await client.get(world.url("/ranking"), params={"election": ELECTION}, headers=org)
    assert ranked.status_code == 200, ranked.text
    assert _factor(ranked.json(), "side_score")["status"] == "used"

    # a name found nowhere: 422 naming the field, and the stored side is kept
    bad = await client.put(
        world.url("/weights"),
        json={"preset": "mobilisation", "side": "Parti imaginaire"},
        headers={**org, **EN},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "side"
    assert "close_matches" in bad.json()
    again = (await client.get(world.url("/weights"), headers=org)).json()
    assert again["side"] == stored["side"]
