"""Elections and sides by name: what each imported election offers, and parties found by name."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput
from app.services.reference.elections import resolve_side


async def _election_id(client, prefix: str) -> int:
    listed = (await client.get("/elections")).json()["elections"]
    return next(e["id"] for e in listed if e["name"].startswith(prefix))


async def test_elections_list_where_they_ran(client):
    r = await client.get("/elections")
    assert r.status_code == 200, r.text
    elections = {e["name"]: e for e in r.json()["elections"]}
    assert "legislatives_2024_t1" in elections
    e = elections["legislatives_2024_t1"]
    # The sample holds the four communes of the Hauts-de-Seine 13th constituency.
    assert set(e["commune_codes"]) == {"92002", "92014", "92019", "92071"}
    assert e["districts"] > 80 and e["registered"] > 50_000 and e["sides"] >= 5


async def test_sides_of_an_election_with_names_candidates_and_shares(client):
    eid = await _election_id(client, "legislatives_2024_t1")
    r = await client.get(f"/elections/{eid}/sides")
    assert r.status_code == 200, r.text
    sides = {s["code"]: s for s in r.json()["sides"]}
    assert sides["ENS"]["name"].startswith("Ensemble")
    assert sides["RN"]["name"] == "Rassemblement national"
    assert any("BREGEON" in label for label in sides["ENS"]["labels"])
    assert 0 < sides["ENS"]["share"] < 100
    assert sum(s["share"] for s in sides.values()) == pytest.approx(100, abs=0.5)
    by_name = await client.get("/elections/legislatives_2024_t1/sides")
    assert by_name.json() == r.json()
    missing = await client.get("/elections/nope/sides")
    assert missing.status_code == 404 and missing.json()["field"] == "election"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ENS", {"ENS"}),
        ("ens", {"ENS"}),
        ("Ensemble", {"ENS"}),
        ("rassemblement national", {"RN"}),
        ("Divers centre", {"DVC"}),
        ("Brégeon", {"BREGEON MAUD"}),
        ("UG, FI", None),  # FI has no candidate in this election: refused below
    ],
)
async def test_a_side_is_found_by_code_name_or_candidate(owner_engine, typed, expected):
    async with owner_engine.connect() as conn:
        eid = (
            await conn.exec_driver_sql(
                "SELECT id FROM election WHERE name = 'legislatives_2024_t1'"
            )
        ).scalar_one()
        if expected is None:
            with pytest.raises(InvalidInput) as err:
                await resolve_side(conn, typed, election_id=eid)
            assert err.value.field == "side"
            return
        assert set(await resolve_side(conn, typed, election_id=eid)) == expected


async def test_an_unknown_side_lists_the_close_matches(owner_engine):
    async with owner_engine.connect() as conn:
        with pytest.raises(InvalidInput) as err:
            await resolve_side(conn, "Rassemblemnt nationl")
    assert err.value.field == "side"
    assert any("Rassemblement national" in m for m in err.value.extra["close_matches"])
    # Across every election: the lists of the European election count too.
    async with owner_engine.connect() as conn:
        tokens = await resolve_side(conn, "Ensemble")
    assert {"ENS", "LENS"} <= set(tokens)
