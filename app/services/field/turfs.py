"""Turfs: drawn by an organiser (validated polygon) or made by a cut; listing, detail, archive."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.context import CampaignContext
from app.errors import Conflict, InvalidInput
from app.geo.turf_split import compactness, project_local, turf_shape
from app.geo.walk import path_length, walk_order
from app.i18n import _
from app.schemas.field import TurfDraw
from app.services.field.polygon import parse_polygon, swapped

MAX_DOORS_PER_TURF = 3000
MIN_OVERLAP_M2 = 1.0


# ---------------------------------------------------------------- SQL
# "Loaded area": a door or a district within about 1 km of the polygon's bounding box.
_LOADED_NEAR = text(
    "WITH g AS (SELECT ST_Expand(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), 0.01) AS g) "
    "SELECT EXISTS (SELECT 1 FROM address, g WHERE geom && g.g)"
    " OR EXISTS (SELECT 1 FROM district, g WHERE geom && g.g)"
)
_OVERLAP = text(
    """
    WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) AS g)
    SELECT t.id, t.name,
           ST_X(ST_PointOnSurface(ST_Intersection(t.geom, g.g))) AS lon,
           ST_Y(ST_PointOnSurface(ST_Intersection(t.geom, g.g))) AS lat
    FROM turf t, g
    WHERE t.campaign_id = :c AND t.status = 'active' AND ST_Intersects(t.geom, g.g)
      AND ST_Area(ST_Intersection(t.geom, g.g)::geography) > :min_area
    LIMIT 1
    """
)
_DOORS_INSIDE = text(
    """
    SELECT a.id, a.lon, a.lat, a.numero, coalesce(a.code_insee, '') || ':' ||
           coalesce(lower(a.nom_voie), '') AS street, a.households,
           td.turf_id AS taken_by, t.name AS taken_name
    FROM address a
    LEFT JOIN turf_door td ON td.campaign_id = :c AND td.address_id = a.id AND td.active
    LEFT JOIN turf t ON t.campaign_id = :c AND t.id = td.turf_id
    WHERE ST_Intersects(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), a.geom)
    ORDER BY a.id
    LIMIT :lim
    """
)
_INSERT_TURF = text(
    """
    INSERT INTO turf (campaign_id, id, name, district_code, geom, origin, door_count, households,
                      walk_length_m, compactness, created_by)
    VALUES (:c, :id, :name, :district, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)),
            :origin, :n, :households, :walk, :compact, :by)
    """
)
_INSERT_TURF_DOORS = text(
    """
    INSERT INTO turf_door (campaign_id, turf_id, address_id, seq)
    SELECT :c, :t, d.id, d.seq
    FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS d(id, seq)
    """
)


@dataclass
class DoorRows:
    """Doors loaded for a turf or a cut, as arrays."""

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    streets: np.ndarray  # integer codes
    parity: np.ndarray
    households: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[Any]) -> DoorRows:
        """Build from rows with id, lon, lat, numero, street, households."""
        street_names = [r.street for r in rows]
        _uniq, codes = np.unique(
            np.asarray(street_names, dtype=object).astype(str), return_inverse=True
        )
        return cls(
            ids=np.asarray([r.id for r in rows], dtype=np.int64),
            lon=np.asarray([r.lon for r in rows], dtype=float),
            lat=np.asarray([r.lat for r in rows], dtype=float),
            streets=codes.astype(np.int64),
            parity=np.asarray([(r.numero or 0) % 2 for r in rows], dtype=np.int64),
            households=np.asarray([r.households or 1 for r in rows], dtype=float),
        )


async def insert_turf(
    ctx: CampaignContext,
    *,
    name: str,
    district_code: str | None,
    geometry: dict[str, Any],
    origin: str,
    door_ids: list[int],
    households: float,
    walk_length_m: float,
    compactness_value: float,
) -> uuid.UUID:
    """Store a turf and its doors in walking order; 409 if a door is already in an active turf."""
    turf_id = uuid.uuid4()
    try:
        async with ctx.session.begin_nested():
            await ctx.session.execute(
                _INSERT_TURF,
                {
                    "c": ctx.campaign_id,
                    "id": turf_id,
                    "name": name,
                    "district": district_code,
                    "g": json.dumps(geometry),
                    "origin": origin,
                    "n": len(door_ids),
                    "households": households,
                    "walk": walk_length_m,
                    "compact": compactness_value,
                    "by": ctx.user_id,
                },
            )
            await ctx.session.execute(
                _INSERT_TURF_DOORS, {"c": ctx.campaign_id, "t": turf_id, "ids": door_ids}
            )
    except IntegrityError as exc:
        if "turf_door_one_active_turf" in str(exc.orig):
            raise Conflict(
                _(
                    "Some of these doors were put in another turf at the same moment (another "
                    "organiser?). Reload the map and try again."
                ),
                field="geometry",
            ) from exc
        raise
    return turf_id


async def _check_loaded_near(session: Any, geom: Any, gjson: str, centre: Any) -> None:
    """422 for a polygon far from every loaded door and district, saying so when it lands on
    them with longitude and latitude exchanged."""
    near = (await session.execute(_LOADED_NEAR, {"g": gjson})).scalar()
    if not near:
        alt = json.dumps(shapely.geometry.mapping(swapped(geom)))
        if (await session.execute(_LOADED_NEAR, {"g": alt})).scalar():
            raise InvalidInput(
                _(
                    "Longitude and latitude look swapped: with them exchanged the polygon lands on "
                    "the loaded area. GeoJSON positions are [longitude, latitude]."
                ),
                field="geometry.coordinates",
                extra={"where": [round(centre.x, 6), round(centre.y, 6)]},
            )
        raise InvalidInput(
            _(
                "The polygon is outside the loaded area: no door or district lies in or near it. "
                "Check that it is drawn in the right place."
            ),
            field="geometry",
            extra={"where": [round(centre.x, 6), round(centre.y, 6)]},
        )


def _check_doors(rows: list[Any], centre: Any) -> None:
    """422 when doors inside already belong to an active turf, when there is none, or when they
    are too many for one turf."""
    taken = [r for r in rows if r.taken_by is not None]
    if taken:
        r = taken[0]
        raise InvalidInput(
            _(
                "{n} door(s) inside already belong to the active turf {name!r} "
                "({taken_by}), e.g. near longitude {lon:.6f}, latitude {lat:.6f}."
            ).format(
                n=len(taken),
                name=r.taken_name,
                taken_by=r.taken_by,
                lon=r.lon,
                lat=r.lat,
            ),
            field="geometry",
            extra={"turf_id": str(r.taken_by), "where": [round(r.lon, 6), round(r.lat, 6)]},
        )
    if not rows:
        raise InvalidInput(
            _("There is no door inside this polygon. Draw around the addresses to canvass."),
            field="geometry",
            extra={"where": [round(centre.x, 6), round(centre.y, 6)]},
        )
    if len(rows) > MAX_DOORS_PER_TURF:
        raise InvalidInput(
            _(
                "The polygon holds more than {max} doors, too many for one "
                "turf. Draw a smaller one, or use the automatic cut."
            ).format(max=MAX_DOORS_PER_TURF),
            field="geometry",
        )


async def draw_turf(ctx: CampaignContext, body: TurfDraw) -> dict[str, Any]:
    """Validate a hand-drawn polygon and make it a turf of the doors inside it."""
    geom = parse_polygon(body.geometry)
    gjson = json.dumps(shapely.geometry.mapping(geom))
    session = ctx.session
    centre = geom.representative_point()
    await _check_loaded_near(session, geom, gjson, centre)
    # Drawings of one campaign are serialised (the lock is held until commit), so two
    # organisers drawing overlapping turfs at the same moment get 201 and a clear 422.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
        {"k": f"draw:{ctx.campaign_id}"},
    )
    hit = (
        await session.execute(
            _OVERLAP, {"g": gjson, "c": ctx.campaign_id, "min_area": MIN_OVERLAP_M2}
        )
    ).first()
    if hit is not None:
        raise InvalidInput(
            _(
                "The polygon overlaps the active turf {name!r} ({id}) around longitude "
                "{lon:.6f}, latitude {lat:.6f}. Redraw it beside that turf, or archive it."
            ).format(name=hit.name, id=hit.id, lon=hit.lon, lat=hit.lat),
            field="geometry",
            extra={"turf_id": str(hit.id), "where": [round(hit.lon, 6), round(hit.lat, 6)]},
        )
    rows = (
        await session.execute(
            _DOORS_INSIDE, {"g": gjson, "c": ctx.campaign_id, "lim": MAX_DOORS_PER_TURF + 1}
        )
    ).all()
    _check_doors(rows, centre)
    district = await _district_for(ctx, body.district_code, gjson)
    doors = DoorRows.from_rows(rows)
    xy, _scale = project_local(doors.lon, doors.lat)
    order = walk_order(xy, doors.streets, doors.parity)
    turf_id = await insert_turf(
        ctx,
        name=body.name,
        district_code=district,
        geometry=shapely.geometry.mapping(geom),
        origin="drawn",
        door_ids=doors.ids[order].tolist(),
        households=float(doors.households.sum()),
        walk_length_m=path_length(xy, order),
        compactness_value=compactness(turf_shape(xy)),
    )
    return await get_turf(ctx, turf_id)


async def _district_for(ctx: CampaignContext, code: str | None, gjson: str) -> str | None:
    """The given district (checked), else the district holding the polygon's inner point."""
    if code is not None:
        found = (
            await ctx.session.execute(text("SELECT 1 FROM district WHERE code = :d"), {"d": code})
        ).first()
        if found is None:
            raise InvalidInput(
                _("Unknown district {code!r}; leave district_code out to have it found.").format(
                    code=code
                ),
                field="district_code",
            )
        return code
    return (
        await ctx.session.execute(
            text(
                "SELECT code FROM district WHERE ST_Intersects(geom, "
                "ST_PointOnSurface(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326))) ORDER BY code LIMIT 1"
            ),
            {"g": gjson},
        )
    ).scalar()


# ---------------------------------------------------------------- reading
_TURF_COLUMNS = """
    t.id, t.name, t.district_code, t.status, t.origin, t.door_count, t.households,
    t.walk_length_m, t.compactness, t.created_at, t.archived_at,
    ST_AsGeoJSON(t.geom, 7)::json AS geometry
"""


def _turf_out(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("walk_length_m", "compactness", "households"):
        if out.get(key) is not None:
            out[key] = round(float(out[key]), 3)
    return out


async def get_turf(ctx: CampaignContext, turf_id: uuid.UUID) -> dict[str, Any]:
    """One turf with its live progress and its assignments (newest first)."""
    from app.services.field.progress import turf_progress

    row = await ctx.one(
        f"SELECT {_TURF_COLUMNS} FROM turf t WHERE t.campaign_id = :c AND t.id = :t",
        t=turf_id,
        missing=_("No such turf in this campaign."),
        field="turf_id",
    )
    out = _turf_out(row)
    out["progress"] = await turf_progress(ctx, turf_id)
    assignments = await ctx.session.execute(
        text(
            "SELECT id, volunteer_user_id, invite_id, starts_at, ends_at, ended_at, created_at, "
            "(ended_at IS NULL AND starts_at <= now() AND (ends_at IS NULL OR ends_at > now())) "
            "AS active FROM assignment WHERE campaign_id = :c AND turf_id = :t "
            "ORDER BY created_at DESC"
        ),
        {"c": ctx.campaign_id, "t": turf_id},
    )
    out["assignments"] = [dict(r._mapping) for r in assignments]
    return out


async def list_turfs(
    ctx: CampaignContext, *, district: str | None, status: str
) -> list[dict[str, Any]]:
    """Turfs of the campaign with door, visited and flagged counts in the current round."""
    rows = await ctx.session.execute(
        text(
            f"""
            WITH t AS (
                SELECT * FROM turf t
                WHERE t.campaign_id = :c
                  AND (CAST(:d AS text) IS NULL OR t.district_code = :d)
                  AND (:s = 'all' OR t.status = :s)
            ),
            statuses AS (
                SELECT td.turf_id,
                       count(*) FILTER (WHERE s.status = 'visited') AS visited,
                       count(*) FILTER (WHERE s.status = 'flagged') AS flagged
                FROM turf_door td CROSS JOIN LATERAL door_status(:c, td.address_id) s
                WHERE td.campaign_id = :c AND td.turf_id IN (SELECT id FROM t)
                GROUP BY td.turf_id
            )
            SELECT {_TURF_COLUMNS},
                   coalesce(st.visited, 0) AS visited, coalesce(st.flagged, 0) AS flagged
            FROM t LEFT JOIN statuses st ON st.turf_id = t.id
            ORDER BY t.district_code NULLS LAST, t.name
            """
        ),
        {"c": ctx.campaign_id, "d": district, "s": status},
    )
    return [_turf_out(r) for r in rows]


async def archive_turf(ctx: CampaignContext, turf_id: uuid.UUID) -> dict[str, Any]:
    """Retire a turf so its doors can go to another; 409 while it has an active assignment."""
    await archive_turfs(ctx, [turf_id])
    return await get_turf(ctx, turf_id)


async def archive_turfs(ctx: CampaignContext, turf_ids: list[uuid.UUID]) -> int:
    """Archive these turfs (free their doors); 409 if one has an active assignment."""
    if not turf_ids:
        return 0
    busy = (
        await ctx.session.execute(
            text(
                "SELECT t.name FROM assignment a JOIN turf t ON t.campaign_id = a.campaign_id "
                "AND t.id = a.turf_id WHERE a.campaign_id = :c AND a.turf_id = ANY(:ids) "
                "AND a.ended_at IS NULL AND (a.ends_at IS NULL OR a.ends_at > now()) LIMIT 1"
            ),
            {"c": ctx.campaign_id, "ids": turf_ids},
        )
    ).first()
    if busy is not None:
        raise Conflict(
            _(
                "The turf {name!r} has an active assignment: end it first (POST "
                ".../assignments/{{id}}/end)."
            ).format(name=busy.name),
            field="turf_id",
        )
    res = await ctx.session.execute(
        text(
            "UPDATE turf SET status = 'archived', archived_at = now() "
            "WHERE campaign_id = :c AND id = ANY(:ids) AND status = 'active' RETURNING id"
        ),
        {"c": ctx.campaign_id, "ids": turf_ids},
    )
    archived = [r.id for r in res]
    if len(turf_ids) == 1 and not archived:
        await ctx.one(
            "SELECT 1 FROM turf WHERE campaign_id = :c AND id = :t",
            t=turf_ids[0],
            missing=_("No such turf in this campaign."),
            field="turf_id",
        )
    await ctx.session.execute(
        text(
            "UPDATE turf_door SET active = false WHERE campaign_id = :c AND turf_id = ANY(:ids) "
            "AND active"
        ),
        {"c": ctx.campaign_id, "ids": turf_ids},
    )
    return len(archived)
