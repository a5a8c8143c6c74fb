"""SYNTHETIC reference data at any size: districts, INSEE-like tiles and doors (run as owner).

Not real data: every district is named 'SYNTHETIC ...', every door comes from the source file
``synthetic-national.csv`` with source 'synthetic'. Districts are the Voronoi cells of points
drawn around random towns (dense towns, sparse countryside, like polling stations), doors are
drawn around the same points, tiles are the 200 m cells holding doors plus some empty ones (the
area-share path). Everything is built in SQL, so that a national-size set (69,000 districts,
2.3 M tiles, millions of doors) takes minutes, not hours. Used by bench/allocation, by the
tests of the incremental allocation (small sizes) and by whoever needs a national-size base.
"""

# ruff: noqa: E501  (the SQL below keeps its expressions on one line each)
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

SOURCE_FILE = "synthetic-national.csv"


@dataclass(frozen=True)
class Size:
    """What to build: a rectangle of ``blocks_x`` x ``blocks_y`` 10 km blocks and the counts."""

    blocks_x: int
    blocks_y: int
    districts: int
    doors: int
    towns: int = 0  # default: one town for 30 districts
    empty_tiles: float = 0.1  # extra tiles without doors, as a share of the tiles with doors
    door_spread: float = 250.0  # metres (standard deviation around a district's seed)
    origin_x: float = 3_600_000.0  # EPSG:3035, in France (a multiple of 10 km)
    origin_y: float = 2_500_000.0
    seed: float = 0.42


async def build(conn: asyncpg.Connection, size: Size) -> dict[str, int]:
    """Fill district, insee_tile and address with SYNTHETIC rows; the row counts."""
    w, h = size.blocks_x * 10_000.0, size.blocks_y * 10_000.0
    x0, y0 = size.origin_x, size.origin_y
    towns = size.towns or max(1, size.districts // 30)
    await conn.execute("SELECT setseed($1::float8)", size.seed)
    await conn.execute(
        """
        CREATE TEMP TABLE syn_town ON COMMIT DROP AS
        SELECT n, $1::float8 + random() * $3::float8 AS x, $2::float8 + random() * $4::float8 AS y,
               300 + 2500 * random() ^ 2 AS spread
        FROM generate_series(1, $5) n
        """,
        x0, y0, w, h, towns,
    )  # fmt: skip
    await conn.execute("CREATE UNIQUE INDEX ON syn_town (n); ANALYZE syn_town")
    # District seeds: 70 % around towns (gaussian, Box-Muller), 30 % anywhere.
    await conn.execute(
        """
        CREATE TEMP TABLE syn_seed ON COMMIT DROP AS
        SELECT n, least(greatest(x, $1::float8 + 1), $1::float8 + $3::float8 - 1) AS x,
                  least(greatest(y, $2::float8 + 1), $2::float8 + $4::float8 - 1) AS y
        FROM (
            SELECT s.n,
                   CASE WHEN u < 0.7 THEN t.x + t.spread * sqrt(-2 * ln(1 - r1)) * cos(2 * pi() * r2)
                        ELSE $1::float8 + r1 * $3::float8 END AS x,
                   CASE WHEN u < 0.7 THEN t.y + t.spread * sqrt(-2 * ln(1 - r1)) * sin(2 * pi() * r2)
                        ELSE $2::float8 + r2 * $4::float8 END AS y
            FROM (SELECT n, random() AS u, random() AS r1, random() AS r2,
                         1 + floor(random() * $6)::int AS town
                  FROM generate_series(1, $5) n) s
            JOIN syn_town t ON t.n = s.town
        ) p
        """,
        x0, y0, w, h, size.districts, towns,
    )  # fmt: skip
    await conn.execute("CREATE UNIQUE INDEX ON syn_seed (n); ANALYZE syn_seed")
    await conn.execute(
        """
        INSERT INTO district (code, kind, name, commune_code, commune_name, geom, geom_3035,
                              source_file)
        SELECT 'SYN' || lpad(row_number() OVER (ORDER BY ST_YMin(g), ST_XMin(g))::text, 6, '0'),
               'bureau_de_vote', 'SYNTHETIC polling station',
               'S' || lpad((floor((ST_Y(ST_PointOnSurface(g)) - $2::float8) / 5000) * 1000
                            + floor((ST_X(ST_PointOnSurface(g)) - $1::float8) / 5000))::text, 4, '0'),
               'SYNTHETIC commune', ST_Multi(ST_Transform(g, 4326)), ST_Multi(g), $5
        FROM (
            SELECT ST_Intersection(v.geom, ST_MakeEnvelope($1::float8, $2::float8, $1::float8 + $3::float8, $2::float8 + $4::float8, 3035)) AS g
            FROM (
                SELECT (ST_Dump(ST_VoronoiPolygons(
                    ST_Collect(ST_SetSRID(ST_MakePoint(x, y), 3035)), 0,
                    ST_MakeEnvelope($1::float8, $2::float8, $1::float8 + $3::float8, $2::float8 + $4::float8, 3035)))).geom
                FROM syn_seed
            ) v
        ) s
        WHERE ST_GeometryType(g) = 'ST_Polygon' AND ST_Area(g) > 0
        """,
        x0, y0, w, h, SOURCE_FILE,
    )  # fmt: skip
    # Doors around the district seeds (each seed draws about the same number), kept 1 m inside the
    # rectangle: a door exactly on a district's edge may fall on either side of it depending on
    # how PostGIS tests it (prepared polygon or not), which would make runs differ.
    await conn.execute(
        """
        CREATE TEMP TABLE syn_door ON COMMIT DROP AS
        SELECT d.n, least(greatest(s.x + $7::float8 * sqrt(-2 * ln(1 - r1)) * cos(2 * pi() * r2), $1::float8 + 1),
                        $1::float8 + $3::float8 - 1) AS x,
                  least(greatest(s.y + $7::float8 * sqrt(-2 * ln(1 - r1)) * sin(2 * pi() * r2), $2::float8 + 1),
                        $2::float8 + $4::float8 - 1) AS y
        FROM (SELECT n, random() AS r1, random() AS r2, 1 + floor(random() * $6)::int AS seed
              FROM generate_series(1, $5) n) d
        JOIN syn_seed s ON s.n = d.seed
        """,
        x0, y0, w, h, size.doors, size.districts, size.door_spread,
    )  # fmt: skip
    await conn.execute("ANALYZE syn_door")
    await conn.execute(
        """
        INSERT INTO address (ban_id, numero, nom_voie, code_postal, code_insee, nom_commune,
                             lon, lat, households, source, source_file)
        SELECT 'SYN_' || n, 1 + n % 200, 'SYNTHETIC street ' || (n / 40),
               '99' || lpad((n % 1000)::text, 3, '0'),
               'S' || lpad((floor((y - $2::float8) / 5000) * 1000 + floor((x - $1::float8) / 5000))::text, 4, '0'),
               'SYNTHETIC commune', round(ST_X(p)::numeric, 7), round(ST_Y(p)::numeric, 7),
               1 + (n % 3), 'synthetic', $3::text
        FROM syn_door, LATERAL ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 3035), 4326) p
        """,
        x0, y0, SOURCE_FILE,
    )  # fmt: skip
    # Tiles: the cells holding doors, plus some empty ones (area share).
    await conn.execute(
        """
        CREATE TEMP TABLE syn_cell ON COMMIT DROP AS
        SELECT floor(x / 200)::bigint * 200 AS e, floor(y / 200)::bigint * 200 AS n,
               count(*) AS doors
        FROM syn_door GROUP BY 1, 2
        """
    )
    await conn.execute(
        """
        INSERT INTO syn_cell
        SELECT DISTINCT floor(($1::float8 + random() * $3::float8) / 200)::bigint * 200,
                        floor(($2::float8 + random() * $4::float8) / 200)::bigint * 200, 0
        FROM generate_series(1, (SELECT (count(*) * $5)::int FROM syn_cell))
        """,
        x0, y0, w, h, size.empty_tiles,
    )  # fmt: skip
    await conn.execute(
        """
        INSERT INTO insee_tile (id, geom, ind, men, men_pauv, men_1ind, men_5ind, men_prop,
            men_fmp, ind_snv, log_soc, log_av45, log_45_70, log_70_90, log_ap90, log_inc,
            ind_18_24, ind_25_39, ind_40_54, ind_55_64, ind_65_79, ind_80p, i_est_200, source_file)
        SELECT 'CRS3035RES200mN' || n || 'E' || e, ST_MakeEnvelope(e, n, e + 200, n + 200, 3035),
               m * 2.2, m, m * 0.15, m * 0.35, m * 0.05, m * 0.55, m * 0.1, m * 2.2 * 21000,
               m * 0.15, m * 0.2, m * 0.2, m * 0.3, m * 0.2, m * 0.1,
               m * 0.2, m * 0.4, m * 0.4, m * 0.3, m * 0.3, m * 0.1,
               CASE WHEN doors = 0 THEN 1 ELSE 0 END, 'synthetic-national-tiles.csv'
        FROM (SELECT DISTINCT ON (e, n) e, n, doors,
                     greatest(doors * (0.8 + 0.6 * random()), 1 + 5 * random()) AS m
              FROM syn_cell ORDER BY e, n, doors DESC) c
        """
    )
    return {
        t: await conn.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("district", "insee_tile", "address")
    }
