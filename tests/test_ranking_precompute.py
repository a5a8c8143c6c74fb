"""The precomputed ranking: pages, one district's explanation, a territory without results, and
the refresh of the stored values when (and only when) their inputs change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.services.ranking import factors
from app.services.ranking.sql import declared_factors
from tests.factories import make_world
from tests.fixtures_ranking import ranking_env, two_areas_env  # noqa: F401
from tests.fixtures_supporters import person

EN = {"Accept-Language": "en"}  # these tests read English messages (French is the default)


def test_the_sql_stores_factors_in_the_catalogue_order():
    """The statements write the factors out by array position: they must agree with the
    catalogue (order, and one term per factor)."""
    from importlib import resources

    assert declared_factors() == list(factors.NAMES)
    assert factors.NAMES[-2:] == factors.CAMPAIGN_FACTORS
    sql_dir = resources.files("app") / "sql"
    values = (sql_dir / "ranking_values.sql").read_text()
    scoring = (sql_dir / "ranking_scoring.sql").read_text()
    reference = len(factors.REFERENCE_FACTORS)
    assert values.count("avg(v[") == values.count("porte_z(raw.v[") == reference
    assert scoring.count("v.z[") == len(factors.NAMES)


async def test_pages_by_offset_and_by_rank_cover_the_ranking_once(client, world):
    h = {**world.headers["analyst"], **EN}
    params = {"preset": "mobilisation", "side": "ENS", "election": "legislatives_2024_t1"}
    whole = await client.get(world.url("/ranking"), params={**params, "limit": 1000}, headers=h)
    whole = whole.json()
    assert whole["total_districts"] == 91 and len(whole["districts"]) == 91
    assert whole["next_after"] is None
    first = await client.get(world.url("/ranking"), params={**params, "limit": 10}, headers=h)
    first = first.json()
    assert [d["rank"] for d in first["districts"]] == list(range(1, 11))
    assert first["next_after"] == 10 and first["cached"] is True
    seen, after = [], None
    while True:
        q = {**params, "limit": 25} | ({"after": after} if after is not None else {})
        page = (await client.get(world.url("/ranking"), params=q, headers=h)).json()
        seen += page["districts"]
        after = page["next_after"]
        if after is None:
            break
    assert [d["code"] for d in seen] == [d["code"] for d in whole["districts"]]
    assert seen == whole["districts"]
    tail = (
        await client.get(
            world.url("/ranking"), params={**params, "limit": 10, "offset": 85}, headers=h
        )
    ).json()
    assert [d["rank"] for d in tail["districts"]] == list(range(86, 92))
    too_big = await client.get(world.url("/ranking"), params={"limit": 5000}, headers=h)
    assert too_big.status_code == 422


async def test_a_districts_explanation_matches_its_row_in_the_ranking(client, world):
    h = {**world.headers["organiser"], **EN}
    params = {"preset": "persuasion", "side": "ENS"}
    ranked = (
        await client.get(world.url("/ranking"), params={**params, "limit": 1000}, headers=h)
    ).json()
    row = ranked["districts"][40]
    out = await client.get(world.url(f"/districts/{row['code']}"), params=params, headers=h)
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["district"] == row
    assert body["total_districts"] == 91
    assert {f["name"] for f in body["factors"]} == set(factors.NAMES)
    assert sum(c["contribution"] for c in row["contributions"]) == pytest.approx(row["score"])


async def test_a_territory_without_results_ranks_and_explains_each_absence(two_areas_env):  # noqa: F811
    """99002 has tiles and doors but no election result; elections exist elsewhere (99001)."""
    client, voted, unvoted, engine, settings, _ = two_areas_env
    w = await make_world(engine, settings)
    r = await client.put(
        w.url("/territory"),
        json={"kind": "communes", "codes": ["99002"]},
        headers={**w.headers["admin"], **EN},
    )
    assert r.status_code == 200, r.text
    h = {**w.headers["analyst"], **EN}
    for params, reason in (
        ({"preset": "persuasion", "side": "ENS"}, "no loaded election has results"),
        (
            {"preset": "mobilisation", "side": "ENS", "election": "fixture 99001"},
            "has no result for this territory",
        ),
    ):
        r = await client.get(w.url("/ranking"), params=params, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        report = {f["name"]: f for f in body["factors"]}
        for name in ("registered", "abstention_rate", "side_score", "closeness", "swing"):
            assert report[name]["status"] == "absent"
            assert reason in report[name]["reason"], report[name]["reason"]
        for f in body["factors"]:
            assert f["status"] == "used" or f["reason"], f
        assert report["population"]["status"] == "used"
        assert {d["code"] for d in body["districts"]} == {unvoted.code(x) for x in "ABCD"}
        assert all(d["score"] == 0 for d in body["districts"])
    one = await client.get(w.url(f"/districts/{unvoted.code('A')}"), headers=h)
    assert one.status_code == 200
    # a territory of districts without tiles or doors says so too
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO district (code, kind, name, commune_code, commune_name, geom, "
                "geom_3035, source_file) SELECT '99009_A', 'bureau_de_vote', 'Empty', '99009', "
                "'Nowhere', ST_Multi(ST_Transform(g, 4326)), ST_Multi(g), 'hand-built' FROM "
                "(SELECT ST_MakeEnvelope(3900000, 2900000, 3900200, 2900200, 3035) AS g) s"
            )
        )
    r = await client.put(
        w.url("/territory"),
        json={"kind": "communes", "codes": ["99009"]},
        headers={**w.headers["admin"], **EN},
    )
    body = (await client.get(w.url("/ranking"), headers=h)).json()
    report = {f["name"]: f for f in body["factors"]}
    assert report["population"]["status"] == "absent"
    assert "no INSEE tile" in report["population"]["reason"]
    assert "no door" in report["door_count"]["reason"]
    assert body["total_districts"] == 1


async def _snapshot_versions(engine, cid) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT max(version), (SELECT count(*) FROM ranking_scoring "
                    "WHERE campaign_id = :c) FROM ranking_snapshot WHERE campaign_id = :c"
                ),
                {"c": cid},
            )
        ).one()
    return row[0], row[1]


async def test_the_stored_values_follow_their_inputs(ranking_env):  # noqa: F811
    """Weights: the values stay, one more scoring. Supporters: only the campaign's factors are
    recomputed. A re-imported election result: everything is. The territory: likewise."""
    client, _, area, engine, settings = ranking_env
    w = await make_world(engine, settings, k=2)
    h = {**w.headers["organiser"], **EN}
    params = {"preset": "mobilisation", "side": "ENS", "election": "fixture 99001"}

    async def rank(**extra):
        r = await client.get(w.url("/ranking"), params={**params, **extra}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    base = await rank()
    version, scorings = await _snapshot_versions(engine, w.campaign_id)
    again = await rank(preset="persuasion")
    assert again["cached"] is False
    assert await _snapshot_versions(engine, w.campaign_id) == (version, scorings + 1)

    # three consented supporters on C's doors (k = 2), placed through the API (their door is
    # encrypted; the ranking counts their clear district cell): the supporters factor moves,
    # nothing else
    async with engine.connect() as conn:
        doors = (
            (
                await conn.execute(
                    text(
                        "SELECT address_id FROM door_district WHERE district_code = :d ORDER BY 1 "
                        "LIMIT 3"
                    ),
                    {"d": area.code("C")},
                )
            )
            .scalars()
            .all()
        )
    for i, door in enumerate(doors):
        r = await client.post(
            w.url("/supporters"),
            headers={**w.headers["admin"], **EN},
            json=person(700 + i, address="somewhere we cannot place"),
        )
        assert r.status_code == 201, r.text
        r = await client.patch(
            w.url(f"/supporters/{r.json()['id']}"),
            headers={**w.headers["admin"], **EN},
            json={"address_id": door},
        )
        assert r.status_code == 200, r.text
    moved = await rank()
    assert moved["cached"] is False
    c = next(d for d in moved["districts"] if d["code"] == area.code("C"))
    assert c["counts"]["supporters"] == 3 and c["values"]["supporters"] == 3
    before = {d["code"]: d["values"] for d in base["districts"]}
    for d in moved["districts"]:
        for name in factors.REFERENCE_FACTORS:
            assert d["values"][name] == before[d["code"]][name]
    report = {f["name"]: f for f in moved["factors"]}
    assert report["supporters"]["status"] == "used"
    assert (await rank())["cached"] is True

    # a result re-imported for A (public data): its abstention is read again
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE election_result SET abstentions = 10 WHERE district_code = :d "
                "AND election_id = (SELECT id FROM election WHERE name = 'fixture 99001')"
            ),
            {"d": area.code("A")},
        )
    try:
        fresh = await rank()
        a = next(d for d in fresh["districts"] if d["code"] == area.code("A"))
        assert a["values"]["abstention_rate"] == pytest.approx(0.10)
        assert fresh["cached"] is False
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE election_result SET abstentions = 50 WHERE district_code = :d "
                    "AND election_id = (SELECT id FROM election WHERE name = 'fixture 99001')"
                ),
                {"d": area.code("A")},
            )

    # the territory's district list is rebuilt: so are the stored values (the same here)
    version, _ = await _snapshot_versions(engine, w.campaign_id)
    r = await client.put(
        w.url("/territory"),
        json={"kind": "communes", "codes": ["99001"]},
        headers={**w.headers["admin"], **EN},
    )
    assert r.status_code == 200 and r.json()["districts"] == 4
    after = await rank()
    assert after["cached"] is False
    assert (await _snapshot_versions(engine, w.campaign_id))[0] > version
    assert [d["code"] for d in after["districts"]] == [d["code"] for d in moved["districts"]]
