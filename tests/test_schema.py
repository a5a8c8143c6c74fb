"""The declared schema (app/tables) is the migrated one: Alembic's ``compare_metadata`` finds no
difference between a database migrated to head and ``app.tables.metadata``.

The database compared is a copy of the suite's template, which is migrated from empty to head at
the start of the session (tests/conftest.py). Alembic compares tables, columns, types (PostGIS
geometry type and SRID included), nullability, server defaults, primary, unique and foreign keys
(with their ON DELETE) and indexes (expression and partial ones included). It does not compare
check constraints, the expressions of generated columns, PL/pgSQL functions, triggers, views,
row-level security policies nor grants: those live in the migrations and app/sql/ only, and other
tests exercise them. PostGIS's own tables are left out (``app.tables.meta.include_object``).

The second test shows that the comparison does fail: a throwaway database is changed the way a
migration might change it, and each change comes out as a difference. The last one keeps the
migrations history: none reads a file of the live code (app/sql/ and the like).
"""

from __future__ import annotations

import ast
import pprint
from pathlib import Path

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.paths import ALEMBIC_DIR
from app.services.reference.imports.common import asyncpg_dsn
from app.tables import metadata
from app.tables.meta import COMPARE_OPTIONS


async def differences(owner_url: str) -> list:
    """What Alembic's autogenerate would change to make the database match the metadata."""
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts=COMPARE_OPTIONS), metadata
                )
            )
    finally:
        await engine.dispose()


def _flat(diff: list) -> list[tuple]:
    """Alembic nests column changes in lists: one flat list of tuples."""
    out: list[tuple] = []
    for item in diff:
        out.extend(item if isinstance(item, list) else [item])
    return out


async def test_migrated_database_matches_the_declared_tables(make_db):
    urls = make_db("schema")
    diff = await differences(urls.owner)
    assert diff == [], "migrations and app/tables disagree:\n" + pprint.pformat(diff, width=100)


async def test_a_migration_the_tables_do_not_declare_is_a_difference(make_db):
    urls = make_db("schemadrift")
    conn = await asyncpg.connect(asyncpg_dsn(urls.owner))
    try:
        await conn.execute(
            """
            ALTER TABLE address ADD COLUMN floors integer;
            DROP INDEX visit_door;
            ALTER TABLE campaign ALTER COLUMN k_threshold SET DEFAULT 12;
            ALTER TABLE turf ALTER COLUMN name DROP NOT NULL;
            ALTER TABLE district ALTER COLUMN geom_3035 TYPE geometry(MultiPolygon, 2154)
                USING ST_Transform(geom_3035, 2154);
            ALTER TABLE visit DROP CONSTRAINT visit_address_id_fkey,
                ADD CONSTRAINT visit_address_id_fkey FOREIGN KEY (address_id)
                REFERENCES address (id) ON DELETE CASCADE;
            CREATE INDEX geocode_commune_city_tail4 ON geocode_commune (right(city_norm, 4));
            CREATE TABLE scratch (id integer PRIMARY KEY);
            """
        )
    finally:
        await conn.close()
    diff = _flat(await differences(urls.owner))
    found = {_about(op) for op in diff}
    assert found >= {
        ("remove_column", "floors"),
        ("add_index", "visit_door"),
        ("modify_default", "campaign"),
        ("modify_nullable", "turf"),
        ("modify_type", "district"),
        ("remove_fk", "visit_address_id_fkey"),
        ("add_fk", "visit_address_id_fkey"),
        ("remove_index", "geocode_commune_city_tail4"),
        ("remove_table", "scratch"),
    }, found


def _about(op: tuple) -> tuple[str, str]:
    """(operation, what it is about): the column, the table of a modified column, the index,
    constraint or table."""
    kind = op[0]
    if kind in ("add_column", "remove_column"):  # (kind, schema, table, column)
        return kind, op[3].name
    if kind.startswith("modify_"):  # (kind, schema, table, column, ...)
        return kind, op[2]
    return kind, op[1].name


# Reading the live code's files from a migration rewrites history when they change: each
# migration keeps its own snapshot of the SQL it runs (0006 and 0021: the allocation functions).
LIVE_FILE_READS = {"read_text", "read_bytes", "open", "files", "as_file"}


def test_migrations_read_no_live_file():
    versions = Path(ALEMBIC_DIR) / "versions"
    offenders = []
    for path in sorted(versions.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if name in LIVE_FILE_READS:
                    offenders.append(f"{path.name}:{node.lineno}: {name}()")
                sibling = "Path(__file__).with_name(" in source  # an older migration, by name
                if name == "spec_from_file_location" and not sibling:
                    offenders.append(f"{path.name}:{node.lineno}: loads {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom) and node.module in ("app.paths", "app.sql"):
                offenders.append(f"{path.name}:{node.lineno}: imports {node.module}")
    assert offenders == []
    assert "ALLOCATION_BODY = " in (versions / "0006_ranking.py").read_text(encoding="utf-8")
