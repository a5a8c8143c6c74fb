"""A placeholder basemap built from the repository's own layers, for the demo and the tests.

It is NOT a map of the streets: it draws the communes (from the polling-station contours, or the
outline of their doors where no contour is loaded), the polling stations, the door points with
their numbers and a label per street at its doors. A campaign replaces it with a real extract of
OpenStreetMap (docs/maps.md). Tiles are encoded by PostGIS (ST_AsMVT) and written to a PMTiles
archive with the ``pmtiles`` library.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.i18n import _

MIN_ZOOM = 10
MAX_ZOOM = 15  # the pages over-zoom beyond: volunteers walk at display zooms 16-19
EXTENT = 4096
# Short: it is shown on a phone. The full provenance is in docs/maps.md and the data READMEs.
ATTRIBUTION = (
    "Placeholder map, not streets: Etalab, BAN (Licence Ouverte 2.0); 92-13 doors synthetic"
)

_SETUP = [
    "DROP TABLE IF EXISTS pg_temp.bm_area, pg_temp.bm_street",
    # land: communes dissolved from their polling stations; where a commune has doors but no
    # contour, the convex outline of its doors (150 m margin)
    """CREATE TEMP TABLE bm_area AS
       SELECT commune_code AS code, max(commune_name) AS name,
              ST_Transform(ST_Multi(ST_Union(geom)), 3857) AS g
       FROM district WHERE commune_code IS NOT NULL GROUP BY commune_code""",
    """INSERT INTO bm_area
       SELECT code_insee, max(nom_commune),
              ST_Transform(ST_Multi(ST_Buffer(ST_ConvexHull(ST_Collect(geom))::geography,
                                              150)::geometry), 3857)
       FROM address
       WHERE code_insee IS NOT NULL
         AND code_insee NOT IN (SELECT code FROM bm_area WHERE code IS NOT NULL)
       GROUP BY code_insee HAVING count(*) >= 3""",
    "CREATE INDEX ON bm_area USING gist (g)",
    # one label per street, at the door nearest the middle of its doors
    """CREATE TEMP TABLE bm_street AS
       SELECT DISTINCT ON (s.code_insee, s.nom_voie) s.nom_voie AS name,
              ST_Transform(a.geom, 3857) AS g
       FROM (SELECT code_insee, nom_voie, ST_Centroid(ST_Collect(geom)) AS c
             FROM address WHERE nom_voie IS NOT NULL GROUP BY code_insee, nom_voie) s
       JOIN address a ON a.code_insee = s.code_insee AND a.nom_voie = s.nom_voie
       ORDER BY s.code_insee, s.nom_voie, a.geom <-> s.c""",
    "CREATE INDEX ON bm_street USING gist (g)",
]

# One query per tile; each layer only from the zoom where it is useful.
_TILE = text(
    """
    WITH e AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                      ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096) AS benv)
    SELECT
      coalesce((SELECT ST_AsMVT(q, 'earth', 4096, 'geom') FROM (
          SELECT ST_AsMVTGeom(ST_SimplifyPreserveTopology(a.g, :tol), e.env, 4096, 64) AS geom,
                 a.name, a.code, 'commune' AS kind
          FROM bm_area a, e WHERE a.g && e.benv) q), ''::bytea)
      || coalesce((SELECT ST_AsMVT(q, 'districts', 4096, 'geom') FROM (
          SELECT ST_AsMVTGeom(ST_SimplifyPreserveTopology(ST_Transform(d.geom, 3857), :tol),
                              e.env, 4096, 64) AS geom, d.code, d.name
          FROM district d, e
          WHERE :z >= 12 AND d.geom && ST_Transform(e.benv, 4326)) q), ''::bytea)
      || coalesce((SELECT ST_AsMVT(q, 'places', 4096, 'geom') FROM (
          SELECT ST_AsMVTGeom(ST_PointOnSurface(a.g), e.env, 4096, 64) AS geom,
                 a.name, 'locality' AS kind
          FROM bm_area a, e WHERE ST_PointOnSurface(a.g) && e.env) q), ''::bytea)
      || coalesce((SELECT ST_AsMVT(q, 'streets', 4096, 'geom') FROM (
          SELECT ST_AsMVTGeom(s.g, e.env, 4096, 64) AS geom, s.name
          FROM bm_street s, e WHERE :z >= 14 AND s.g && e.env) q), ''::bytea)
      || coalesce((SELECT ST_AsMVT(q, 'addresses', 4096, 'geom') FROM (
          SELECT ST_AsMVTGeom(ST_Transform(a.geom, 3857), e.env, 4096, 64) AS geom,
                 concat(a.numero, a.suffixe) AS housenumber
          FROM address a, e
          WHERE :z >= 14 AND a.geom && ST_Transform(e.benv, 4326)) q), ''::bytea)
    AS mvt
    """
)

VECTOR_LAYERS = [
    {
        "id": "earth",
        "fields": {"name": "String", "code": "String", "kind": "String"},
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "description": "communes (from polling-station contours, or the outline of their doors)",
    },
    {
        "id": "districts",
        "fields": {"code": "String", "name": "String"},
        "minzoom": 12,
        "maxzoom": MAX_ZOOM,
        "description": "polling-station contours",
    },
    {
        "id": "places",
        "fields": {"name": "String", "kind": "String"},
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "description": "commune names",
    },
    {
        "id": "streets",
        "fields": {"name": "String"},
        "minzoom": 14,
        "maxzoom": MAX_ZOOM,
        "description": "one label point per street",
    },
    {
        "id": "addresses",
        "fields": {"housenumber": "String"},
        "minzoom": 14,
        "maxzoom": MAX_ZOOM,
        "description": "door points (BAN/BAL or synthetic)",
    },
]


def _tile_range(west: float, south: float, east: float, north: float, z: int):
    n = 1 << z

    def tx(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def ty(lat: float) -> int:
        lat = max(min(lat, 85.0511), -85.0511)
        y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
        return min(n - 1, max(0, int(y)))

    for x in range(tx(west), tx(east) + 1):
        for y in range(ty(north), ty(south) + 1):
            yield x, y


async def build_placeholder(
    engine: AsyncEngine,
    out: Path,
    *,
    min_zoom: int = MIN_ZOOM,
    max_zoom: int = MAX_ZOOM,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the placeholder archive to ``out``; returns its bounds, zooms, tile count, size."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    async with engine.connect() as conn:
        for sql in _SETUP:
            await conn.execute(text(sql))
        areas = (
            await conn.execute(
                text(
                    "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM "
                    "(SELECT ST_Transform(g, 4326)::box2d AS b FROM bm_area) s"
                )
            )
        ).all()
        if not areas:
            raise ValueError(_("no district and no door is loaded: nothing to draw a basemap of"))
        tiles: set[tuple[int, int, int]] = set()
        for z in range(min_zoom, max_zoom + 1):
            for w, s, e, n in areas:
                tiles.update((z, x, y) for x, y in _tile_range(w, s, e, n, z))
        ordered = sorted(tiles, key=lambda t: zxy_to_tileid(*t))
        tmp = out.with_name(out.name + ".part")
        written = 0
        with tmp.open("wb") as f:
            writer = Writer(f)
            for i, (z, x, y) in enumerate(ordered):
                tol = 40075016.686 / (1 << z) / EXTENT  # one tile unit at this zoom, in metres
                mvt = (await conn.execute(_TILE, {"z": z, "x": x, "y": y, "tol": tol})).scalar()
                if mvt:
                    writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(bytes(mvt), mtime=0))
                    written += 1
                if progress and (i % 200 == 0 or i == len(ordered) - 1):
                    progress(i + 1, len(ordered))
            if not written:
                raise ValueError(_("the loaded layers gave no tile: nothing to draw a basemap of"))
            west = min(a[0] for a in areas)
            south = min(a[1] for a in areas)
            east = max(a[2] for a in areas)
            north = max(a[3] for a in areas)
            header = {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_lon_e7": int(west * 1e7),
                "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(math.ceil(east * 1e7)),
                "max_lat_e7": int(math.ceil(north * 1e7)),
                "center_zoom": min_zoom + 2,
                "center_lon_e7": int((west + east) / 2 * 1e7),
                "center_lat_e7": int((south + north) / 2 * 1e7),
            }
            metadata = {
                "name": "Porte-à-porte placeholder basemap (not a street map)",
                "description": (
                    "Built by `porte basemap placeholder` from the layers loaded in the "
                    "database: communes, polling stations, door points, street labels. Replace "
                    "it with an OpenStreetMap extract (docs/maps.md)."
                ),
                "attribution": ATTRIBUTION,
                "vector_layers": VECTOR_LAYERS,
                "porte:placeholder": True,
            }
            writer.finalize(header, metadata)
        tmp.replace(out)
    return {
        "path": str(out),
        "bounds": [west, south, east, north],
        "minzoom": min_zoom,
        "maxzoom": max_zoom,
        "tiles": written,
        "size_bytes": out.stat().st_size,
    }
