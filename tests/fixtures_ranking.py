"""Fixtures of the ranking tests: a small hand-built area, the real 92-13 tiles and contours.

Where the migrations have not created the reference tables, ``ensure_reference_schema`` creates
them from the shared schema contract (COMMON.md) with ``IF NOT EXISTS``; where they have, the real
tables are used unchanged.

The hand-built area (EPSG:3035, origin E0 = 3756000, N0 = 2875800, tiles of 200 m)::

      N0+200 +--------+--------+--------+--------+
             |  T1    |  T2    |  T3    |  T4    |
             | +--+   |   .    |   .    |   .    |     districts (x ranges, full height):
             | |C |   |   .    |   .    |   .    |       C = [E0+50, E0+150] x [N0+50, N0+150]
             | +--+   |   .    |   .    |   .    |       A = [E0, E0+300] minus C
          N0 +--------+--------+--------+--------+       B = [E0+300, E0+500]
             E0      +200     +400     +600     +800     D = [E0+500, E0+700]; beyond: nothing

  doors: T1 -> 4 in C, 6 in A; T2 -> 3 in A, 1 in B; T3 -> none; T4 -> 1 in D, 1 outside.
  households (men): T1 100, T2 40, T3 20, T4 10 (ind = 2 x men, other counts proportional).

  Expected allocation (weights): T1: C 0.4, A 0.6 (doors);  T2: A 0.75, B 0.25 (doors);
  T3: B 0.5, D 0.5 (no door: area);  T4: D 0.5 (doors; the other door is outside every district).
  Households: C 40, A 90, B 20, D 15 = 165 = 100 + 40 + 20 + 10 x 1/2 (the part of T4 outside).

  Elections (hand-made numbers, not real results): "fixture <prefix>" (ELECTION below, the latest
  loaded) and an earlier "fixture <prefix> reference" (REFERENCE_ELECTION, loaded a day before)
  where D has no result (a station that did not exist then), for the swing factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import REPO_ROOT
from app.geo.insee import FILOSOFI_COUNTS
from app.migration_helpers import APP_ROLE

E0, N0 = 3756000, 2875800
SAMPLE = REPO_ROOT / "data" / "sample_insee"  # real INSEE tiles and contours, copied in the repo

TILE_COLUMNS = FILOSOFI_COUNTS

CONTRACT_DDL = [
    "CREATE TABLE IF NOT EXISTS insee_tile (id text PRIMARY KEY, geom geometry(Polygon, 3035), "
    + ", ".join(f"{c} double precision" for c in TILE_COLUMNS)
    + ", i_est_200 smallint, lcog_geo text, source_file text)",
    "CREATE INDEX IF NOT EXISTS insee_tile_geom ON insee_tile USING gist (geom)",
    """CREATE TABLE IF NOT EXISTS address (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ban_id text UNIQUE, numero int,
        suffixe text, nom_voie text, code_postal text, code_insee text, nom_commune text,
        lon double precision, lat double precision,
        geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326))
            STORED,
        households real NOT NULL DEFAULT 1, source text, source_file text)""",
    "CREATE INDEX IF NOT EXISTS address_geom ON address USING gist (geom)",
    """CREATE TABLE IF NOT EXISTS district (code text PRIMARY KEY, kind text, name text,
        commune_code text, commune_name text, geom geometry(MultiPolygon, 4326),
        geom_3035 geometry(MultiPolygon, 3035), source_file text)""",
    "CREATE INDEX IF NOT EXISTS district_geom ON district USING gist (geom)",
    "CREATE INDEX IF NOT EXISTS district_geom_3035 ON district USING gist (geom_3035)",
    """CREATE TABLE IF NOT EXISTS election (id serial PRIMARY KEY, name text UNIQUE,
        source_file text, loaded_at timestamptz DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS election_result (election_id int, district_code text,
        commune_code text, inscrits int, votants int, abstentions int, exprimes int, blancs int,
        nuls int, PRIMARY KEY (election_id, district_code))""",
    """CREATE TABLE IF NOT EXISTS election_candidate_result (election_id int, district_code text,
        position int, nuance text, label text, voix int,
        PRIMARY KEY (election_id, district_code, position))""",
]
REFERENCE = (
    "insee_tile",
    "address",
    "district",
    "election",
    "election_result",
    "election_candidate_result",
)


async def ensure_reference_schema(engine: AsyncEngine) -> None:
    """Create the contract's reference tables when the migrations have not (owner)."""
    async with engine.begin() as conn:
        for ddl in CONTRACT_DDL:
            await conn.execute(text(ddl))
        for table in REFERENCE:
            await conn.execute(text(f"GRANT SELECT ON {table} TO {APP_ROLE}"))


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 3035)"


TILES = {"T1": (0, 100), "T2": (200, 40), "T3": (400, 20), "T4": (600, 10)}  # x offset, men
DISTRICTS = {
    "A": f"ST_Difference({_box(E0, N0, E0 + 300, N0 + 200)}, "
    f"{_box(E0 + 50, N0 + 50, E0 + 150, N0 + 150)})",
    "B": _box(E0 + 300, N0, E0 + 500, N0 + 200),
    "C": _box(E0 + 50, N0 + 50, E0 + 150, N0 + 150),
    "D": _box(E0 + 500, N0, E0 + 700, N0 + 200),
}
# door positions (x, y) in EPSG:3035
DOORS = (
    [(E0 + 60 + 10 * i, N0 + 100) for i in range(4)]  # T1, in C
    + [(E0 + 20, N0 + 20 + 25 * i) for i in range(6)]  # T1, in A
    + [(E0 + 220 + 20 * i, N0 + 100) for i in range(3)]  # T2, in A
    + [(E0 + 350, N0 + 100)]  # T2, in B
    + [(E0 + 650, N0 + 100), (E0 + 750, N0 + 100)]  # T4: in D, outside
)
# (inscrits, abstentions, exprimes, side votes, rival votes) per district; side = nuance ENS
ELECTION = {
    "A": (100, 50, 50, 25, 20),
    "B": (100, 30, 70, 35, 30),
    "C": (100, 40, 60, 18, 30),
    "D": (100, 20, 80, 56, 20),
}
# The earlier reference election of the swing (same columns); D has no result in it.
# ENS share: A 18/60 = .30, B 24/50 = .48, C 17/50 = .34.
REFERENCE_ELECTION = {
    "A": (100, 40, 60, 18, 30),
    "B": (100, 50, 50, 24, 20),
    "C": (100, 50, 50, 17, 25),
}


def tile_id(x: int, y: int) -> str:
    """INSEE id of the 200 m tile whose lower-left corner is (x, y) in EPSG:3035."""
    return f"CRS3035RES200mN{y}E{x}"


@dataclass(frozen=True)
class HandArea:
    """Codes of the hand-built fixture (district code = prefix + letter)."""

    prefix: str

    def code(self, letter: str) -> str:
        return f"{self.prefix}_{letter}"


async def load_hand_area(
    engine: AsyncEngine, prefix: str = "99001", election: bool = True, dx: int = 0
) -> HandArea:
    """Insert the hand-built tiles, districts, doors (and election) above; refresh allocation.

    ``dx`` (a multiple of 200 m) moves the whole area east, so that several can be loaded."""
    await ensure_reference_schema(engine)
    async with engine.begin() as conn:
        for name, (offset, men) in TILES.items():
            x = E0 + dx + offset
            values = {c: 0.0 for c in TILE_COLUMNS}
            values.update(
                ind=2 * men,
                men=men,
                men_pauv=men * {"T1": 0.1, "T2": 0.3, "T3": 0.2, "T4": 0.5}[name],
                men_prop=men / 2,
                men_1ind=men / 4,
                men_5ind=men / 10,
                ind_snv=2 * men * 20000,
                log_soc=men / 5,
                log_ap90=men,
                ind_18_24=men / 5,
                ind_25_39=men / 2,
            )
            cols = ", ".join(values)
            binds = ", ".join(f":{c}" for c in values)
            await conn.execute(
                text(
                    f"INSERT INTO insee_tile (id, geom, {cols}, i_est_200, source_file) VALUES "
                    f"(:id, {_box(x, N0, x + 200, N0 + 200)}, {binds}, :imp, 'hand-built fixture')"
                ),
                {"id": tile_id(x, N0), "imp": 1 if name == "T4" else 0, **values},
            )
        for letter, geom in DISTRICTS.items():
            await conn.execute(
                text(
                    f"INSERT INTO district (code, kind, name, commune_code, commune_name, geom, "
                    f"geom_3035, source_file) SELECT :code, 'bureau_de_vote', :name, :commune, "
                    f"'Fixture', ST_Multi(ST_Transform(g, 4326)), ST_Multi(g), 'hand-built' "
                    f"FROM (SELECT ST_Translate({geom}, {dx}, 0) AS g) s"
                ),
                {"code": f"{prefix}_{letter}", "name": f"District {letter}", "commune": prefix},
            )
        for i, (x, y) in enumerate(DOORS):
            await conn.execute(
                text(
                    "INSERT INTO address (ban_id, numero, nom_voie, code_insee, lon, lat, source, "
                    "source_file) SELECT :ban, :n, 'rue du Test', :commune, ST_X(p), ST_Y(p), "
                    "'synthetic', 'hand-built fixture' FROM "
                    "(SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3035), 4326) AS p) s"
                ),
                {"ban": f"{prefix}_door_{i}", "n": i + 1, "commune": prefix, "x": x + dx, "y": y},
            )
        if election:
            await _insert_election(
                conn, prefix, f"fixture {prefix} reference", REFERENCE_ELECTION, 1
            )
            await _insert_election(conn, prefix, f"fixture {prefix}", ELECTION, 0)
        await conn.execute(text("SELECT porte_refresh_allocation()"))
    return HandArea(prefix)


async def _insert_election(
    conn: AsyncConnection,
    prefix: str,
    name: str,
    results: dict[str, tuple[int, ...]],
    days_ago: int,
) -> None:
    """One hand-made election (ENS, UG, DIV per district), loaded ``days_ago`` days ago."""
    eid = (
        await conn.execute(
            text(
                "INSERT INTO election (name, source_file, loaded_at) VALUES "
                "(:n, 'hand-built', now() - make_interval(days => :days)) RETURNING id"
            ),
            {"n": name, "days": days_ago},
        )
    ).scalar_one()
    for letter, (ins, abst, expr, side, rival) in results.items():
        code = f"{prefix}_{letter}"
        await conn.execute(
            text(
                "INSERT INTO election_result (election_id, district_code, commune_code, "
                "inscrits, votants, abstentions, exprimes, blancs, nuls) VALUES "
                "(:e, :d, :c, :i, :v, :a, :x, 0, 0)"
            ),
            {
                "e": eid,
                "d": code,
                "c": prefix,
                "i": ins,
                "v": ins - abst,
                "a": abst,
                "x": expr,
            },
        )
        for pos, (nuance, label, voix) in enumerate(
            [
                ("ENS", "DUPONT Anne", side),
                ("UG", "MARTIN Paul", rival),
                ("DIV", "PETIT Luc", expr - side - rival),
            ],
            start=1,
        ):
            await conn.execute(
                text(
                    "INSERT INTO election_candidate_result (election_id, district_code, "
                    "position, nuance, label, voix) VALUES (:e, :d, :p, :n, :l, :v)"
                ),
                {"e": eid, "d": code, "p": pos, "n": nuance, "l": label, "v": voix},
            )


async def load_real_tiles_and_contours(
    engine: AsyncEngine,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Load the real 92-13 Filosofi tiles and polling-station contours (no doors); refresh."""
    await ensure_reference_schema(engine)
    tiles = gpd.read_file(SAMPLE / "filosofi2019_carreaux_200m_9213.gpkg").to_crs(3035)
    bv = gpd.read_file(SAMPLE / "contours_bv_9213.geojson")
    async with engine.begin() as conn:
        for row in tiles.itertuples():
            values = {c: float(getattr(row, c)) for c in TILE_COLUMNS}
            cols = ", ".join(values)
            binds = ", ".join(f":{c}" for c in values)
            await conn.execute(
                text(
                    f"INSERT INTO insee_tile (id, geom, {cols}, i_est_200, lcog_geo, source_file) "
                    f"VALUES (:id, ST_GeomFromText(:wkt, 3035), {binds}, :imp, :lcog, 'filosofi')"
                ),
                {
                    "id": row.idcar_200m,
                    "wkt": row.geometry.wkt,
                    "imp": int(row.i_est_200),
                    "lcog": str(row.lcog_geo),
                    **values,
                },
            )
        for row in bv.itertuples():
            await conn.execute(
                text(
                    "INSERT INTO district (code, kind, name, commune_code, commune_name, geom, "
                    "geom_3035, source_file) SELECT :code, 'bureau_de_vote', :name, :cc, :cn, "
                    "ST_Multi(g), ST_Multi(ST_Transform(g, 3035)), 'contours_bv_9213' FROM "
                    "(SELECT ST_SetSRID(ST_GeomFromText(:wkt), 4326) AS g) s"
                ),
                {
                    "code": row.codeBureauVote,
                    "name": row.nomBureauVote,
                    "cc": row.codeCommune,
                    "cn": row.nomCommune,
                    "wkt": row.geometry.wkt,
                },
            )
        await conn.execute(text("SELECT porte_refresh_allocation()"))
    return tiles, bv


@pytest.fixture(scope="session")
async def ranking_env(make_db):
    """The hand-built area in its own database, a campaign (k = 11) and an HTTP client."""
    import httpx
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.main import create_app
    from tests.conftest import make_settings
    from tests.factories import make_world

    urls = make_db("rank")
    engine = create_async_engine(urls.owner, pool_size=2)
    area = await load_hand_area(engine)
    settings = make_settings(urls)
    world = await make_world(engine, settings)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, world, area, engine, settings
    await app.state.db.dispose()
    await engine.dispose()


@pytest.fixture(scope="session")
async def two_areas_env(make_db):
    """Two hand-built areas 10 km apart in their own database: 99001 with its elections, 99002
    with none; an HTTP client. For territories (constituency files, a territory without
    results)."""
    import httpx
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.main import create_app
    from tests.conftest import make_settings

    urls = make_db("areas")
    engine = create_async_engine(urls.owner, pool_size=2)
    voted = await load_hand_area(engine, "99001")
    unvoted = await load_hand_area(engine, "99002", election=False, dx=10_000)
    settings = make_settings(urls)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, voted, unvoted, engine, settings, urls.owner
    await app.state.db.dispose()
    await engine.dispose()
