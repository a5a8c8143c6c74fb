"""Automatic cut: a district (or several, or a drawn area) into balanced turfs with walking orders.

The geometry is pure (``app.geo.turf_split``); this module loads the doors, takes the locks and
stores the result. Two organisers cutting the same district at once: the first takes a
transaction-scoped advisory lock, the second gets 409 at once (no waiting, no double cut). The
partial unique index on ``turf_door`` is the last guard: a door is never in two active turfs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text

from app.context import CampaignContext
from app.errors import Conflict, InvalidInput, NotFound
from app.geo.turf_split import CutPlan, cut_plan
from app.i18n import _
from app.schemas.field import CutRequest
from app.services.access import territory
from app.services.field.polygon import parse_polygon
from app.services.field.turfs import DoorRows, archive_turfs, insert_turf

_DISTRICT_DOORS = text(
    """
    SELECT a.id, a.lon, a.lat, a.numero,
           coalesce(a.code_insee, '') || ':' || coalesce(lower(a.nom_voie), '') AS street,
           a.households
    FROM district d
    JOIN address a ON ST_Intersects(d.geom, a.geom)
    WHERE d.code = :code
      AND NOT EXISTS (
          SELECT 1 FROM turf_door td JOIN turf t ON t.campaign_id = td.campaign_id
                                                AND t.id = td.turf_id
          WHERE td.campaign_id = :c AND td.address_id = a.id AND td.active
            AND NOT (:replace AND t.district_code = :code))
    ORDER BY a.id
    """
)
_AREA_DOORS = text(
    """
    SELECT a.id, a.lon, a.lat, a.numero,
           coalesce(a.code_insee, '') || ':' || coalesce(lower(a.nom_voie), '') AS street,
           a.households
    FROM address a
    WHERE ST_Intersects(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), a.geom)
      AND NOT EXISTS (SELECT 1 FROM turf_door td WHERE td.campaign_id = :c
                      AND td.address_id = a.id AND td.active)
    ORDER BY a.id
    LIMIT :lim
    """
)
MAX_AREA_DOORS = 200_000


def door_weights(req: CutRequest, doors: DoorRows) -> np.ndarray:
    """Each door's share of the measure the cut balances."""
    if req.balance == "doors":
        return np.ones(len(doors.ids))
    if req.balance == "households":
        return doors.households
    return (req.seconds_per_door + req.seconds_per_household * doors.households) / 60.0


async def _try_lock(ctx: CampaignContext, key: str, what: str) -> None:
    got = (
        await ctx.session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 7))"),
            {"k": f"cut:{ctx.campaign_id}:{key}"},
        )
    ).scalar()
    if not got:
        raise Conflict(
            _(
                "Another organiser is cutting {what} right now. Wait for their cut to finish, "
                "then look at the result before cutting again."
            ).format(what=what),
            field="code",
        )


async def _plan(rows: list[Any], req: CutRequest) -> tuple[DoorRows, CutPlan]:
    doors = DoorRows.from_rows(rows)
    plan = await asyncio.to_thread(
        cut_plan,
        doors.lon,
        doors.lat,
        req.turf_size,
        streets=doors.streets,
        parity=doors.parity,
        households=doors.households,
        weights=door_weights(req, doors),
    )
    return doors, plan


async def _store(
    ctx: CampaignContext,
    doors: DoorRows,
    plan: CutPlan,
    req: CutRequest,
    *,
    district: str | None,
    prefix: str,
    dry_run: bool,
) -> list[dict[str, Any]]:
    out = []
    width = max(2, len(str(len(plan.turfs))))
    for i, t in enumerate(plan.turfs, start=1):
        name = f"{prefix} · {i:0{width}d}"
        turf_id = None
        ids = doors.ids[t.doors].tolist()
        if not dry_run:
            turf_id = await insert_turf(
                ctx,
                name=name,
                district_code=district,
                geometry=t.geometry,
                origin="cut",
                door_ids=ids,
                households=t.households,
                walk_length_m=t.walk_length_m,
                compactness_value=t.compactness,
            )
        out.append(
            {
                "id": turf_id,
                "name": name,
                "district_code": district,
                "door_count": len(ids),
                "households": round(t.households, 1),
                "minutes": round(req.minutes(len(ids), t.households), 1),
                "walk_length_m": round(t.walk_length_m, 1),
                "input_order_length_m": round(t.input_order_length_m, 1),
                "compactness": round(t.compactness, 3),
                "geometry": t.geometry,
            }
        )
    return out


_MEASURE_KEY = {"doors": "door_count", "households": "households", "minutes": "minutes"}


def _summary(plans: list[CutPlan], turfs: list[dict[str, Any]], req: CutRequest) -> dict[str, Any]:
    sizes = np.asarray([t[_MEASURE_KEY[req.balance]] for t in turfs], dtype=float)
    if len(sizes):
        balance = {
            "measure": req.balance,
            "turfs": len(sizes),
            "min": round(float(sizes.min()), 1),
            "max": round(float(sizes.max()), 1),
            "mean": round(float(sizes.mean()), 1),
            # per district: each district is balanced around its own mean
            "max_deviation": round(max(p.balance["max_deviation"] for p in plans if p.turfs), 4),
        }
    else:
        balance = {
            "measure": req.balance,
            "turfs": 0,
            "min": 0,
            "max": 0,
            "mean": 0.0,
            "max_deviation": 0.0,
        }
    return {
        "doors": int(sum(t["door_count"] for t in turfs)),
        "households": round(sum(t["households"] for t in turfs), 1),
        "minutes": round(sum(t["minutes"] for t in turfs), 1),
        "balance_on": req.balance,
        "turf_size": req.turf_size,
        "balance": balance,
        "streets_split": sum(p.streets_split for p in plans),
        "walk_length_m": round(sum(t["walk_length_m"] for t in turfs), 1),
        "input_order_length_m": round(sum(t["input_order_length_m"] for t in turfs), 1),
    }


async def _check_districts(ctx: CampaignContext, codes: list[str]) -> None:
    """Every district to cut exists (404) and is in the campaign's territory (422)."""
    known = {
        r.code: r.name
        for r in await ctx.session.execute(
            text("SELECT code, name FROM district WHERE code = ANY(:codes)"), {"codes": codes}
        )
    }
    missing = [c for c in codes if c not in known]
    if missing:
        raise NotFound(
            _("Unknown district(s): {codes}. List them with GET /districts.").format(
                codes=", ".join(missing[:10])
            ),
            field="code" if len(codes) == 1 else "districts",
        )
    away = await territory.outside(ctx.session, ctx.campaign_id, codes)
    if away:
        raise InvalidInput(
            _("Outside the campaign's territory: {codes}. Change the territory first.").format(
                codes=", ".join(away[:10])
            ),
            field="code" if len(codes) == 1 else "districts",
        )


async def cut_districts(
    ctx: CampaignContext, codes: list[str], req: CutRequest, *, dry_run: bool
) -> dict[str, Any]:
    """Cut each district into turfs of about ``doors_per_turf`` doors (or preview it)."""
    codes = list(dict.fromkeys(codes))  # de-duplicate, keep order
    await _check_districts(ctx, codes)
    if not dry_run:
        for code in sorted(codes):
            await _try_lock(ctx, code, _("district {code}").format(code=code))
    existing = {
        r.district_code: (r.n, r.ids)
        for r in await ctx.session.execute(
            text(
                "SELECT district_code, count(*) AS n, array_agg(id) AS ids FROM turf "
                "WHERE campaign_id = :c AND status = 'active' AND district_code = ANY(:codes) "
                "GROUP BY district_code"
            ),
            {"c": ctx.campaign_id, "codes": codes},
        )
    }
    if existing and not req.replace:
        code, (n, _ids) = next(iter(existing.items()))
        raise Conflict(
            _(
                "District {code} already has {n} active turf(s). Look at them first; to cut "
                'again, send "replace": true (their turfs are archived; refused while one is '
                "assigned)."
            ).format(code=code, n=n),
            field="code" if len(codes) == 1 else "districts",
            extra={"district_code": code},
        )
    if existing and req.replace and not dry_run:
        await archive_turfs(ctx, [i for _n, ids in existing.values() for i in ids])
    plans: list[CutPlan] = []
    turfs: list[dict[str, Any]] = []
    taken: set[int] = set()
    for code in codes:
        rows = (
            await ctx.session.execute(
                _DISTRICT_DOORS, {"code": code, "c": ctx.campaign_id, "replace": req.replace}
            )
        ).all()
        # Districts may overlap by a sliver: a door goes to the first district that holds it.
        rows = [r for r in rows if r.id not in taken]
        taken.update(r.id for r in rows)
        if not rows:
            continue
        doors, plan = await _plan(rows, req)
        plans.append(plan)
        prefix = f"{req.name_prefix or code}"
        turfs += await _store(ctx, doors, plan, req, district=code, prefix=prefix, dry_run=dry_run)
    if not turfs:
        raise InvalidInput(
            _("No door to cut: these districts hold no address that is not already in a turf."),
            field="code" if len(codes) == 1 else "districts",
        )
    return {
        "dry_run": dry_run,
        "districts": codes,
        **_summary(plans, turfs, req),
        "turfs": turfs,
    }


async def cut_area(
    ctx: CampaignContext, area: dict[str, Any], req: CutRequest, *, dry_run: bool
) -> dict[str, Any]:
    """Cut the free doors inside a drawn polygon into turfs (or preview it)."""
    geom = parse_polygon(area, field="area")
    if not dry_run:
        await _try_lock(ctx, "area", _("an area of this campaign"))
    rows = (
        await ctx.session.execute(
            _AREA_DOORS,
            {
                "g": json.dumps(shapely.geometry.mapping(geom)),
                "c": ctx.campaign_id,
                "lim": MAX_AREA_DOORS + 1,
            },
        )
    ).all()
    if not rows:
        raise InvalidInput(
            _("No door to cut inside this area (none loaded there, or all already in turfs)."),
            field="area",
        )
    if len(rows) > MAX_AREA_DOORS:
        raise InvalidInput(
            _("The area holds more than {max} doors; cut it district by district.").format(
                max=MAX_AREA_DOORS
            ),
            field="area",
        )
    doors, plan = await _plan(rows, req)
    turfs = await _store(
        ctx, doors, plan, req, district=None, prefix=req.name_prefix or "Zone", dry_run=dry_run
    )
    return {
        "dry_run": dry_run,
        "districts": [],
        **_summary([plan], turfs, req),
        "turfs": turfs,
    }
