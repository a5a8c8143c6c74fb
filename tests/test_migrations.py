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
