"""Public reference data over HTTP: health and data counts, districts as GeoJSON."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.i18n import _, number

VERSIONS = text("SELECT current_setting('server_version') AS pg, postgis_lib_version() AS postgis")
COUNTS = text(
    """
    SELECT (SELECT count(*) FROM insee_tile) AS tiles,
           (SELECT count(*) FROM district) AS districts,
           (SELECT count(*) FROM election) AS elections,
           (SELECT name FROM election ORDER BY loaded_at DESC, id DESC LIMIT 1) AS last_election,
           (SELECT CASE WHEN c.reltuples > 1000000 THEN c.reltuples::bigint
                        ELSE (SELECT count(*) FROM address) END
              FROM pg_class c WHERE c.oid = 'address'::regclass) AS doors,
           (SELECT count(*) FROM address WHERE source = 'synthetic') AS synthetic_doors
    """
)
LAST_ELECTION = "(SELECT id FROM election ORDER BY loaded_at DESC, id DESC LIMIT 1)"
DISTRICTS = text(
    f"""
    WITH page AS (
        SELECT d.code, d.kind, d.name, d.commune_code, d.commune_name, d.geom,
               count(*) OVER () AS matched
        FROM district d
        WHERE (CAST(:commune AS text) IS NULL OR d.commune_code = :commune)
          AND (CAST(:xmin AS float8) IS NULL
               OR d.geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326))
        ORDER BY d.code
        LIMIT :limit OFFSET :offset
    )
    SELECT p.code, p.kind, p.name, p.commune_code, p.commune_name, p.matched,
           ST_AsGeoJSON(p.geom, 6) AS geometry,
           doors.n AS doors, doors.households,
           e.name AS election, r.inscrits AS registered
    FROM page p
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, coalesce(sum(a.households), 0) AS households
        FROM address a WHERE ST_Intersects(a.geom, p.geom)
    ) doors
    LEFT JOIN election e ON e.id = {LAST_ELECTION}
    LEFT JOIN election_result r ON r.election_id = e.id AND r.district_code = p.code
    ORDER BY p.code
    """
)
COUNT_DISTRICTS = text(
    """
    SELECT count(*) FROM district d
    WHERE (CAST(:commune AS text) IS NULL OR d.commune_code = :commune)
      AND (CAST(:xmin AS float8) IS NULL
           OR d.geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326))
    """
)
DISTRICT = text(
    f"""
    SELECT d.code, d.kind, d.name, d.commune_code, d.commune_name, 1 AS matched,
           ST_AsGeoJSON(d.geom, 6) AS geometry,
           (SELECT count(*) FROM address a WHERE ST_Intersects(a.geom, d.geom)) AS doors,
           (SELECT coalesce(sum(a.households), 0) FROM address a
             WHERE ST_Intersects(a.geom, d.geom)) AS households,
           e.name AS election, r.inscrits AS registered
    FROM district d
    LEFT JOIN election e ON e.id = {LAST_ELECTION}
    LEFT JOIN election_result r ON r.election_id = e.id AND r.district_code = d.code
    WHERE d.code = :code
    """
)
RESULTS = text(
    """
    SELECT e.name AS election, r.inscrits, r.votants, r.abstentions, r.exprimes, r.blancs,
           r.nuls
    FROM election_result r JOIN election e ON e.id = r.election_id
    WHERE r.district_code = :code
    ORDER BY e.loaded_at, e.id
    """
)
_COMMUNE = re.compile(r"^\d[\dAB]\d{3}$")


async def health(session: AsyncSession) -> dict[str, Any]:
    """Database and PostGIS versions, data counts, and whether the doors are synthetic."""
    v = (await session.execute(VERSIONS)).mappings().one()
    c = dict((await session.execute(COUNTS)).mappings().one())
    notes = []
    if c["synthetic_doors"]:
        notes.append(
            _(
                "{synthetic} of the {doors} doors are SYNTHETIC demo doors (generated from INSEE "
                "tiles, not real addresses). Import the BAN file of the département with "
                "`porte import addresses` to replace them."
            ).format(synthetic=number(c["synthetic_doors"]), doors=number(c["doors"]))
        )
    if not c["tiles"] and not c["districts"]:
        notes.append(_("No reference data loaded yet: run `porte import sample` or `porte demo`."))
    return {
        "status": "ok",
        "database": {"postgresql": v["pg"], "postgis": v["postgis"]},
        "data": c,
        "synthetic_doors": bool(c["synthetic_doors"]),
        "notes": notes,
    }


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``minLon,minLat,maxLon,maxLat`` (WGS84) -> floats; InvalidInput naming ``bbox``."""
    if value is None or value == "":
        return None
    parts = value.split(",")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) != 4 or any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise InvalidInput(
            _(
                "bbox {value!r} must be four numbers minLon,minLat,maxLon,maxLat (WGS84), e.g. "
                "2.22,48.72,2.33,48.79."
            ).format(value=value),
            field="bbox",
        )
    xmin, ymin, xmax, ymax = nums
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        raise InvalidInput(
            _(
                "bbox {value!r}: longitudes must be within -180..180, latitudes within "
                "-90..90, and min ≤ max."
            ).format(value=value),
            field="bbox",
        )
    return xmin, ymin, xmax, ymax


def _feature(row: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": row["code"],
        "geometry": json.loads(row["geometry"]),
        "properties": {
            "code": row["code"],
            "kind": row["kind"],
            "name": row["name"],
            "commune_code": row["commune_code"],
            "commune_name": row["commune_name"],
            "doors": row["doors"],
            "households": float(row["households"]),
            "election": row["election"],
            "registered": row["registered"],
        },
    }


async def list_districts(
    session: AsyncSession, *, bbox: str | None, commune: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """A page of districts as a GeoJSON FeatureCollection (WGS84)."""
    box = parse_bbox(bbox)
    if commune is not None and not _COMMUNE.match(commune):
        raise InvalidInput(
            _("commune {commune!r} must be a 5-character INSEE code, e.g. 92002.").format(
                commune=commune
            ),
            field="commune",
        )
    xmin, ymin, xmax, ymax = box or (None, None, None, None)
    rows = (
        (
            await session.execute(
                DISTRICTS,
                {
                    "commune": commune,
                    "xmin": xmin,
                    "ymin": ymin,
                    "xmax": xmax,
                    "ymax": ymax,
                    "limit": limit,
                    "offset": offset,
                },
            )
        )
        .mappings()
        .all()
    )
    matched = rows[0]["matched"] if rows else None
    if matched is None:  # an empty page: count what the filters match
        matched = (
            await session.execute(
                COUNT_DISTRICTS,
                {"commune": commune, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax},
            )
        ).scalar_one()
    return {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(rows),
        "features": [_feature(r) for r in rows],
    }


async def get_district(session: AsyncSession, code: str) -> dict[str, Any]:
    """One district as a GeoJSON Feature, with every loaded election's totals."""
    row = (await session.execute(DISTRICT, {"code": code})).mappings().first()
    if row is None:
        raise NotFound(
            _("No district with code {code!r}. List them with GET /districts.").format(code=code)
        )
    feature = _feature(row)
    results = (await session.execute(RESULTS, {"code": code})).mappings().all()
    feature["properties"]["results"] = [dict(r) for r in results]
    return feature
