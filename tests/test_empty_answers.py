"""Every empty answer says why, and what to do (issue 19, point 6).

A campaign whose territory holds no district (its communes' polling-station contours are not
loaded) gets a ranking that says so, naming the communes and the import command, and the same
explanation from a district's page, the exports, the OGC collection and ``porte rank``; a
territory naming communes without contours is refused with the same words; a factor left out
says which import brings it."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import make_world
from tests.fixtures_ranking import two_areas_env  # noqa: F401

EN = {"Accept-Language": "en"}
BRUZ = "35047"  # the sample holds Bruz's doors (its BAL), not its polling-station contours


async def test_a_territory_of_communes_without_contours_is_refused_naming_them(client, world):
    h = world.headers["admin"]
    r = await client.put(
        world.url("/territory"), json={"kind": "communes", "codes": [BRUZ]}, headers={**h, **EN}
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "codes" and body["unknown"] == [BRUZ]
    assert f"{BRUZ} (Bruz)" in body["detail"]
    assert "porte import districts" in body["detail"]
    assert "Their doors are loaded" in body["detail"]  # only the contours are missing
    fr = await client.put(
        world.url("/territory"), json={"kind": "communes", "codes": [BRUZ]}, headers=h
    )
    assert "Bruz" in fr.json()["detail"] and fr.json()["detail"] != body["detail"]


async def test_an_empty_territory_explains_itself_everywhere(two_areas_env, tmp_path):  # noqa: F811
    """A constituency whose only commune (99007, synthetic doors loaded, no contour) has no
    polling station loaded: 200 with the reason, never a bare empty list."""
    from app.services.reference.imports.constituencies import import_constituencies

    client, _, _, engine, settings, owner = two_areas_env
    communes = tmp_path / "circonscription-vide.csv"
    communes.write_text("CODE DPT,CODE COMMUNE,CODE CIRC LEGISLATIVE\n99,007,7\n", encoding="utf-8")
    await import_constituencies(owner, communes)
    async with engine.begin() as conn:  # one SYNTHETIC door of 99007, far from the hand areas
        await conn.execute(
            text(
                "INSERT INTO address (ban_id, numero, nom_voie, code_insee, nom_commune, lon, lat, "
                "source, source_file) VALUES ('99007_door_1', 1, 'rue du Vide', '99007', "
                "'Vide-sur-Test', 5.5, 45.5, 'synthetic', 'empty territory test') "
                "ON CONFLICT DO NOTHING"
            )
        )
    w = await make_world(engine, settings)
    r = await client.put(
        w.url("/territory"),
        json={"kind": "constituency", "codes": ["99-07"]},
        headers=w.headers["admin"],
    )
    assert r.status_code == 200 and r.json()["districts"] == 0, r.text
    h = {**w.headers["analyst"], **EN}

    ranked = await client.get(w.url("/ranking"), headers=h)
    assert ranked.status_code == 200, ranked.text
    body = ranked.json()
    assert body["districts"] == [] and body["total_districts"] == 0
    empty = body["empty"]
    assert empty["reason"] == "no_contours"
    assert [c["code"] for c in empty["communes"]] == ["99007"]
    assert empty["communes"][0]["name"] == "Vide-sur-Test" and empty["communes"][0]["doors"] == 1
    assert "No polling-station contours are loaded for 99007 (Vide-sur-Test)" in empty["detail"]
    assert "porte import districts" in empty["action"]
    assert str(w.campaign_id) in empty["action"]  # where to change the territory
    # in French by default, the same facts
    fr = (await client.get(w.url("/ranking"), headers=w.headers["analyst"])).json()["empty"]
    assert "99007 (Vide-sur-Test)" in fr["detail"] and fr["detail"] != empty["detail"]
    assert "porte import districts" in fr["action"]

    one = await client.get(w.url("/districts/99001_A"), headers=h)
    assert one.status_code == 404 and one.json()["empty"]["reason"] == "no_contours"
    assert "porte import districts" in one.json()["detail"]

    export = await client.get(w.url("/exports/priority-zones.gpkg"), headers=h)
    assert export.status_code == 409, export.text
    assert "Nothing to export" in export.json()["detail"]
    assert "99007 (Vide-sur-Test)" in export.json()["detail"]

    meta = await client.get(w.url("/ogc/collections/priority-zones"), headers=h)
    assert meta.status_code == 200 and "porte import districts" in meta.json()["description"]

    # a campaign with districts gets no such note
    other = await make_world(engine, settings)
    full = (await client.get(other.url("/ranking"), headers=other.headers["analyst"])).json()
    assert full["total_districts"] > 0 and full["empty"] is None


async def test_a_left_out_factor_says_which_import_brings_it(two_areas_env):  # noqa: F811
    """99002 has no election result: the election factors say so, and how to get them."""
    client, _, unvoted, engine, settings, _ = two_areas_env
    w = await make_world(engine, settings)
    r = await client.put(
        w.url("/territory"),
        json={"kind": "communes", "codes": [unvoted.prefix]},
        headers=w.headers["admin"],
    )
    assert r.status_code == 200, r.text
    body = (
        await client.get(
            w.url("/ranking"), params={"side": "ENS"}, headers={**w.headers["analyst"], **EN}
        )
    ).json()
    report = {f["name"]: f for f in body["factors"]}
    for name in ("registered", "abstention_rate", "side_score"):
        assert report[name]["status"] == "absent"
        assert "porte import results" in report[name]["reason"], report[name]["reason"]
    assert "POST /campaigns/" in report["coverage"]["reason"]  # no round yet: how to start one
