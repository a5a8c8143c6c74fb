"""The bulk path of an address import: a first load that dwarfs the table.

Inside the import's transaction (a failure restores everything): the table is locked, its
secondary indexes are dropped and rebuilt once after COPY, and the geocoder's insert trigger is
taken off, its counts added once over the new doors, and put back before commit.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

SECONDARY_INDEXES = """
SELECT i.relname AS index, pg_get_indexdef(i.oid) AS indexdef,
       c.conname AS constraint, pg_get_constraintdef(c.oid) AS constraintdef,
       t.spcname AS tablespace
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_tablespace t ON t.oid = i.reltablespace
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = 'address'::regclass AND NOT x.indisprimary
  AND x.indpred IS NULL  -- partial indexes (e.g. synthetic doors) stay: few rows, no full scan
ORDER BY i.relname
"""
DEFER_MIN_ROWS = 50_000  # below, keeping the indexes costs less than the exclusive lock
BYTES_PER_ROW = 150  # a BAN line is ~150-250 bytes; gzip divides by ~4


def estimated_rows(path: Path) -> int:
    size = path.stat().st_size * (4 if path.suffix == ".gz" else 1)
    return size // BYTES_PER_ROW


async def should_defer(conn: asyncpg.Connection, path: Path, force: bool | None) -> bool:
    """Rebuild the secondary indexes once after COPY when the load dwarfs the table."""
    if force is not None:
        return force
    est = estimated_rows(path)
    if est < DEFER_MIN_ROWS:
        return False
    current = await conn.fetchval(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'address'::regclass"
    )
    return est >= current


async def drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop address's secondary indexes (not the primary key nor partial indexes); return the
    SQL to rebuild them.

    Done inside the import's transaction: a failure restores them with everything else. The
    table is locked (ACCESS EXCLUSIVE) until the import commits.
    """
    rebuild = []
    for ix in await conn.fetch(SECONDARY_INDEXES):
        # pg_get_indexdef leaves the tablespace out: an index kept elsewhere goes back there.
        space = ix["tablespace"]
        where = f' TABLESPACE "{space}"' if space else ""
        if ix["constraint"]:
            try:
                async with conn.transaction():  # savepoint: kept if something depends on it
                    await conn.execute(f'ALTER TABLE address DROP CONSTRAINT "{ix["constraint"]}"')
            except asyncpg.DependentObjectsStillExistError:
                continue
            rebuild.append(
                f'ALTER TABLE address ADD CONSTRAINT "{ix["constraint"]}" {ix["constraintdef"]}'
                + (f" USING INDEX{where}" if space else "")
            )
        else:
            await conn.execute(f'DROP INDEX "{ix["index"]}"')
            rebuild.append(ix["indexdef"] + where)
    return rebuild


GEOCODE_TRIGGER = "geocode_index_insert"
ID_SEQUENCE = "address_id_seq"
# What the geocoder's insert trigger (migration 0018, porte_geocode_index_add) does with its
# transition table, done once over the doors just loaded: a bulk load takes the trigger off (and
# puts it back before commit), so that COPY does not keep a copy of every row (a disabled trigger
# still would). The counts are made by PostgreSQL (a grouped scan of the new ids, spilling to disk
# past work_mem), not in Python, where a national file's ~2 M streets would take ~600 MB. A test
# compares the result with a recount from ``address``.
GEOCODE_ADD = [
    # the name normalised once per distinct name (0.2 ms each; "Grande Rue" is in many communes)
    """
    WITH g AS MATERIALIZED (
        SELECT code_insee, nom_voie, count(*) AS n FROM address
        WHERE id BETWEEN $1 AND $2 AND code_insee IS NOT NULL AND nom_voie IS NOT NULL
        GROUP BY 1, 2
    ), v AS MATERIALIZED (
        SELECT nom_voie, porte_norm_name(nom_voie) AS voie_norm
        FROM (SELECT DISTINCT nom_voie FROM g) d
    )
    INSERT INTO geocode_street AS s (code_insee, nom_voie, voie_norm, n)
    SELECT g.code_insee, g.nom_voie, v.voie_norm, g.n FROM g JOIN v USING (nom_voie)
    ON CONFLICT (code_insee, nom_voie) DO UPDATE SET n = s.n + excluded.n
    """,
    """
    INSERT INTO geocode_commune AS c (code_insee, code_postal, nom_commune, nom_ancienne, n)
    SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
           coalesce(nom_ancienne_commune, ''), count(*)
    FROM address WHERE id BETWEEN $1 AND $2 AND code_insee IS NOT NULL GROUP BY 1, 2, 3, 4
    ON CONFLICT (code_insee, code_postal, nom_commune, nom_ancienne)
    DO UPDATE SET n = c.n + excluded.n
    """,
]


async def drop_geocode_trigger(conn: asyncpg.Connection) -> str | None:
    """Drop the geocoder's insert trigger (if there and enabled); return the SQL to recreate it.

    Inside the import's transaction: a failure restores it with everything else.
    """
    sql = await conn.fetchval(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = 'address'::regclass AND tgname = $1 AND tgenabled <> 'D'",
        GEOCODE_TRIGGER,
    )
    if sql is None:
        return None
    await conn.execute(f"DROP TRIGGER {GEOCODE_TRIGGER} ON address")
    return sql


async def add_geocode_counts(conn: asyncpg.Connection, first_id: int, n: int) -> None:
    """Add the ``n`` doors loaded from id ``first_id`` on to ``geocode_street`` and
    ``geocode_commune``."""
    if n:
        for sql in GEOCODE_ADD:
            await conn.execute(sql, first_id, first_id + n - 1)
