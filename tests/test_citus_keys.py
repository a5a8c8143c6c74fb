"""The schema is ready for Citus (docs/scale.md): campaign tables can be distributed by
``campaign_id``, public data made reference tables.

Citus enforces a primary key or unique constraint of a distributed table only if it includes the
distribution column, and a foreign key between two distributed tables only if both sides include
it; a foreign key from a distributed table to a reference table is allowed as it is.
"""

from __future__ import annotations

import asyncpg

# Tables that are neither campaign data nor public data: Citus reference tables as well.
SHARED = {"app_user", "refresh_token", "auth_failure", "rate_event", "alembic_version"}

CONSTRAINTS = """
SELECT c.relname AS table_name, con.conname, con.contype::text AS contype,
       pg_get_constraintdef(con.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) k
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k)::text[] AS cols,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) k
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k)::text[] AS fcols,
       f.relname AS foreign_table
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_class f ON f.oid = con.confrelid
WHERE con.contype IN ('p', 'u', 'f')
"""
UNIQUE_INDEXES = """
SELECT c.relname AS table_name, i.relname AS index_name, pg_get_indexdef(i.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) k
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k)::text[] AS cols
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
"""
CAMPAIGN_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity
"""


async def test_every_campaign_key_includes_campaign_id(make_db):
    urls = make_db("citus")
    conn = await asyncpg.connect(urls.owner.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        campaign = {r[0] for r in await conn.fetch(CAMPAIGN_TABLES)}
        constraints = await conn.fetch(CONSTRAINTS)
        indexes = await conn.fetch(UNIQUE_INDEXES)
    finally:
        await conn.close()
    # Every campaign table has row-level security, and carries campaign_id (campaign: its id).
    assert {"campaign", "visit", "supporter", "turf", "invite", "audit_event"} <= campaign

    def key(table: str) -> str:
        return "id" if table == "campaign" else "campaign_id"

    wrong = []
    for r in constraints:
        table = r["table_name"]
        if table not in campaign:
            continue
        if r["contype"] in ("p", "u") and key(table) not in r["cols"]:
            wrong.append(f"{table}: {r['conname']} {r['definition']}")
        if r["contype"] == "f" and r["foreign_table"] in campaign:
            ok = key(table) in r["cols"] and key(r["foreign_table"]) in r["fcols"]
            pairs = dict(zip(r["cols"], r["fcols"], strict=True))
            if not ok or pairs.get(key(table)) != key(r["foreign_table"]):
                wrong.append(f"{table}: {r['conname']} {r['definition']}")
    for r in indexes:
        if r["table_name"] in campaign and key(r["table_name"]) not in r["cols"]:
            wrong.append(f"{r['table_name']}: {r['index_name']} {r['definition']}")
    assert not wrong, "\n".join(wrong)

    # The other tables are public data or accounts: Citus reference tables, which campaign tables
    # may reference freely. None of them may reference campaign data.
    for r in constraints:
        if r["contype"] == "f" and r["table_name"] not in campaign:
            assert r["foreign_table"] not in campaign, (r["table_name"], r["definition"])
