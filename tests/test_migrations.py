"""Alembic: upgrade head, downgrade base, upgrade head again on an empty database."""

from __future__ import annotations

import asyncio

from alembic.script import ScriptDirectory

from app.migrate import alembic_config, downgrade, upgrade
from tests.fixtures_imports import fetch

TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND d.objid IS NULL AND c.relname <> 'alembic_version'
ORDER BY 1
"""
FUNCTIONS = """
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
WHERE n.nspname = 'public' AND d.objid IS NULL ORDER BY 1
"""


async def _objects(url: str) -> tuple[list[str], list[str]]:
    tables = [r[0] for r in await fetch(url, TABLES)]
    functions = [r[0] for r in await fetch(url, FUNCTIONS)]
    return tables, functions


async def test_upgrade_downgrade_upgrade_on_an_empty_database(pg_cluster):
    pg_cluster.create_database("migrations_roundtrip")
    url = pg_cluster.url("owner", "migrations_roundtrip")
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()

    await asyncio.to_thread(upgrade, url)
    assert (await fetch(url, "SELECT version_num FROM alembic_version"))[0][0] == head
    at_head = await _objects(url)
    for table in (
        "insee_tile",
        "address",
        "district",
        "election",
        "election_result",
        "election_candidate_result",
        "campaign",
        "membership",
    ):
        assert table in at_head[0]
    # address.geom is a stored generated column (no UPDATE pass after COPY)
    generated = await fetch(
        url,
        "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'address'::regclass"
        " AND attname = 'geom'",
    )
    assert generated[0][0] == "s"

    await asyncio.to_thread(downgrade, url, "base")
    assert await _objects(url) == ([], [])
    assert await fetch(url, "SELECT * FROM alembic_version") == []

    await asyncio.to_thread(upgrade, url)
    assert await _objects(url) == at_head
    pg_cluster.drop_database("migrations_roundtrip")


async def test_smaller_holes_migration_cleans_existing_rows(pg_cluster):
    """0017 meets rows the old schema allowed and fixes them instead of failing:
    flats that are notes become NULL (the visit stays), request ids and client addresses that
    are texts become NULL, retention dates past election + 1 month 7 days come back to it."""
    name = "migrations_0017"
    pg_cluster.create_database(name)
    url = pg_cluster.url("owner", name)
    script = ScriptDirectory.from_config(alembic_config(url))
    before = script.get_revision("0017_smaller_holes").down_revision
    await asyncio.to_thread(upgrade, url, before)
    cid = (
        await fetch(
            url,
            "INSERT INTO campaign (name, election_date, visit_retention_date) "
            "VALUES ('Old', '2026-03-15', '2099-01-01') RETURNING id",
        )
    )[0][0]
    early = (
        await fetch(
            url,
            "INSERT INTO campaign (name, election_date, visit_retention_date) "
            "VALUES ('Early', '2026-03-15', '2026-01-01') RETURNING id",
        )
    )[0][0]
    aid = (
        await fetch(
            url,
            "INSERT INTO address (ban_id, numero, nom_voie, code_insee, nom_commune, lon, lat, "
            "source, source_file) VALUES ('m1', 1, 'Rue Test', '35047', 'Bruz', -1.75, 48.02, "
            "'synthetic', 'test (synthetic)') RETURNING id",
        )
    )[0][0]
    rid = (
        await fetch(
            url,
            "INSERT INTO canvass_round (campaign_id, number) VALUES ($1, 1) RETURNING id",
            cid,
        )
    )[0][0]
    flats = {"vote RN": None, "3b": "3B", " 12 ": "12", "contre": None, None: None}
    for i, flat in enumerate(flats):
        await fetch(
            url,
            "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, flat, visited_at, "
            "recorded_at) VALUES ($1, gen_random_uuid(), $2, $3, 'talked', $4, now(), "
            "now() + make_interval(secs => $5))",
            cid,
            aid,
            rid,
            flat,
            i,
        )
    await fetch(
        url,
        "INSERT INTO audit_event (campaign_id, action, request_id, client) VALUES "
        "($1, 'a.one', 'ok-1', '10.0.0.1'), ($1, 'a.two', 'vote pour X', 'je vote RN')",
        cid,
    )

    await asyncio.to_thread(upgrade, url, "0017_smaller_holes")
    stored = [r[0] for r in await fetch(url, "SELECT flat FROM visit ORDER BY recorded_at")]
    assert stored == list(flats.values())
    events = await fetch(url, "SELECT request_id, client FROM audit_event ORDER BY action")
    assert [tuple(e) for e in events] == [("ok-1", "10.0.0.1"), (None, None)]
    kept = dict(await fetch(url, "SELECT id, visit_retention_date::text FROM campaign"))
    assert kept[cid] == "2026-04-22" and kept[early] == "2026-03-15"
    pg_cluster.drop_database(name)
