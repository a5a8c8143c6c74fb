"""Live progress per turf, district and campaign: doors, visited, flagged, outcomes, by round.

Computed on request from the visit table (no cache), so it moves as visits arrive. A door
counts for the turf whose door list holds it (a door is in at most one active turf). Status rule
(COMMON.md): flagged beats visited; visited = a visit in the current round.
Analysts see district and campaign levels only, with outcome and flag counts below k suppressed.
Campaign and district figures cover the turfs of the campaign's territory (``campaign_district``;
turfs outside every district count only when the territory is the whole country).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import text

from app.authz import ANALYST
from app.context import CampaignContext
from app.errors import Forbidden
from app.services.access import territory

OUTCOMES = ("not_home", "talked", "refused", "moved", "no_access", "do_not_knock")

_TURF_DOORS = """
    t AS (
        SELECT id, name, district_code FROM turf
        WHERE campaign_id = :c
          AND (CASE WHEN CAST(:turf AS uuid) IS NULL THEN status = 'active' ELSE id = :turf END)
          AND (CAST(:district AS text) IS NULL OR district_code = :district)
          AND (CAST(:turf AS uuid) IS NOT NULL
               OR EXISTS (SELECT 1 FROM campaign_district cd WHERE cd.campaign_id = :c
                          AND cd.district_code = turf.district_code)
               OR (district_code IS NULL AND EXISTS (
                   SELECT 1 FROM campaign_territory ct WHERE ct.campaign_id = :c
                   AND ct.kind = 'country')))
    ),
    d AS (
        SELECT td.turf_id, td.address_id,
               EXISTS (SELECT 1 FROM door_flag f WHERE f.campaign_id = :c
                       AND f.address_id = td.address_id) AS flagged
        FROM turf_door td JOIN t ON t.id = td.turf_id
        WHERE td.campaign_id = :c AND (td.active OR CAST(:turf AS uuid) IS NOT NULL)
    )
"""

# Doors and flags per turf.
_DOORS = text(
    f"""
    WITH {_TURF_DOORS}
    SELECT t.id AS turf_id, t.name, t.district_code, count(d.address_id) AS doors,
           count(*) FILTER (WHERE d.flagged) AS flagged
    FROM t LEFT JOIN d ON d.turf_id = t.id
    GROUP BY t.id, t.name, t.district_code
    """
)

# Per turf and round: doors by their latest outcome in that round, flagged or not, and visits.
_ROUNDS = text(
    f"""
    WITH {_TURF_DOORS},
    v AS (
        SELECT v.round_id, v.address_id, v.outcome, v.visited_at
        FROM visit v JOIN d ON d.address_id = v.address_id
        WHERE v.campaign_id = :c
    ),
    latest AS (
        SELECT DISTINCT ON (round_id, address_id) round_id, address_id, outcome
        FROM v ORDER BY round_id, address_id, visited_at DESC
    ),
    counts AS (
        SELECT round_id, address_id, count(*) AS visits FROM v GROUP BY round_id, address_id
    )
    SELECT d.turf_id, r.number AS round, l.outcome, d.flagged,
           count(*) AS doors, sum(c.visits) AS visits
    FROM latest l
    JOIN counts c USING (round_id, address_id)
    JOIN d ON d.address_id = l.address_id
    JOIN canvass_round r ON r.campaign_id = :c AND r.id = l.round_id
    GROUP BY d.turf_id, r.number, l.outcome, d.flagged
    """
)
_DISTRICT_DOORS = text(
    "SELECT d.code, count(a.id) AS n FROM district d LEFT JOIN address a "
    "ON ST_Intersects(d.geom, a.geom) WHERE d.code = ANY(:codes) GROUP BY d.code"
)
_ROUNDS_LIST = text(
    "SELECT number, name, started_at FROM canvass_round WHERE campaign_id = :c ORDER BY number"
)


def _empty(doors: int = 0, flagged: int = 0) -> dict[str, Any]:
    return {
        "doors": doors,
        "visited": 0,
        "flagged": flagged,
        "pending": doors - flagged,
        "visits": 0,
        "outcomes": dict.fromkeys(OUTCOMES, 0),
        "rounds": {},
    }


def _add(acc: dict[str, Any], other: dict[str, Any]) -> None:
    for key in ("doors", "visited", "flagged", "pending", "visits"):
        acc[key] += other[key]
    for o, n in other["outcomes"].items():
        acc["outcomes"][o] += n
    for rnd, stats in other["rounds"].items():
        into = acc["rounds"].setdefault(
            rnd, {"visited": 0, "visits": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)}
        )
        into["visited"] += stats["visited"]
        into["visits"] += stats["visits"]
        for o, n in stats["outcomes"].items():
            into["outcomes"][o] += n


async def _per_turf(
    ctx: CampaignContext, *, turf_id: uuid.UUID | None = None, district: str | None = None
) -> tuple[dict[uuid.UUID, dict[str, Any]], int | None, list[Any]]:
    params = {"c": ctx.campaign_id, "turf": turf_id, "district": district}
    if turf_id is None:
        await territory.ensure(ctx.session, ctx.campaign_id)
    rounds = (await ctx.session.execute(_ROUNDS_LIST, params)).all()
    current = rounds[-1].number if rounds else None
    turfs: dict[uuid.UUID, dict[str, Any]] = {}
    for r in await ctx.session.execute(_DOORS, params):
        entry = _empty(r.doors, r.flagged)
        entry.update(turf_id=r.turf_id, name=r.name, district_code=r.district_code)
        turfs[r.turf_id] = entry
    for r in await ctx.session.execute(_ROUNDS, params):
        entry = turfs[r.turf_id]
        rnd = entry["rounds"].setdefault(
            r.round, {"visited": 0, "visits": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)}
        )
        rnd["visited"] += r.doors
        rnd["visits"] += int(r.visits)
        rnd["outcomes"][r.outcome] += r.doors
        if r.round == current:
            entry["outcomes"][r.outcome] += r.doors
            entry["visits"] += int(r.visits)
            if not r.flagged:
                entry["visited"] += r.doors
                entry["pending"] -= r.doors
    return turfs, current, rounds


def _suppress(entry: dict[str, Any], k: int) -> dict[str, Any]:
    """Analysts: counts of outcomes and flags below k become None."""

    def cut(n: int) -> int | None:
        return n if n == 0 or n >= k else None

    entry["flagged"] = cut(entry["flagged"])
    entry["outcomes"] = {o: cut(n) for o, n in entry["outcomes"].items()}
    for stats in entry["rounds"].values():
        stats["outcomes"] = {o: cut(n) for o, n in stats["outcomes"].items()}
    return entry


async def turf_progress(ctx: CampaignContext, turf_id: uuid.UUID) -> dict[str, Any]:
    """Progress of one turf (its own door list, archived or not)."""
    turfs, current, _ = await _per_turf(ctx, turf_id=turf_id)
    entry = turfs.get(turf_id) or _empty()
    return {k: v for k, v in entry.items() if k not in ("turf_id", "name", "district_code")} | {
        "current_round": current
    }


async def progress(
    ctx: CampaignContext, *, level: str | None, district: str | None
) -> dict[str, Any]:
    """Campaign, district and turf progress of the active turfs (live)."""
    analyst = ctx.role == ANALYST
    if analyst and level == "turf":
        raise Forbidden("Analysts see progress per district and campaign only.")
    turfs, current, rounds = await _per_turf(ctx, district=district)
    campaign = _empty()
    districts: dict[str, dict[str, Any]] = defaultdict(_empty)
    for entry in turfs.values():
        _add(campaign, entry)
        _add(districts[entry["district_code"] or "-"], entry)
        districts[entry["district_code"] or "-"]["turfs"] = (
            districts[entry["district_code"] or "-"].get("turfs", 0) + 1
        )
    out: dict[str, Any] = {
        "current_round": current,
        "rounds": [
            {"number": r.number, "name": r.name, "started_at": r.started_at} for r in rounds
        ],
    }
    k = ctx.k_threshold
    if level in (None, "campaign"):
        out["campaign"] = _suppress(campaign, k) if analyst else campaign
    if level in (None, "district"):
        codes = [c for c in districts if c != "-"]
        if codes:
            # Doors of the polling station, in turfs or not: how much of it the turfs cover.
            for r in await ctx.session.execute(_DISTRICT_DOORS, {"codes": codes}):
                districts[r.code]["doors_in_district"] = r.n
        out["districts"] = [
            {"district_code": None if code == "-" else code, **(_suppress(e, k) if analyst else e)}
            for code, e in sorted(districts.items())
        ]
    if level in (None, "turf") and not analyst:
        out["turfs"] = sorted(turfs.values(), key=lambda e: (e["district_code"] or "", e["name"]))
    return out
