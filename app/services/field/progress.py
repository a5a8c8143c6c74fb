"""Live progress per turf, district and campaign: doors, visited, flagged, outcomes, by round.

Computed on request from the visit table, so it moves as visits arrive. A door counts for the
turf whose door list holds it (a door is in at most one active turf). Status rule (docs/field.md,
SQL ``door_status()``): flagged beats visited; visited = a visit in the current round.

Admins and organisers see every door of the campaign's territory, so their progress is exact,
per turf, per turf's district and for the campaign. Analysts see aggregates only, decided by
app.disclosure: per district *of the door* (the partition the ranking uses, so that the
ranking's visited doors are the same published counts) and for the campaign, per round, visited
doors and doors by latest outcome, with primary and complementary suppression; districts where
the campaign has fewer than k doors are left out (docs/privacy.md).

Campaign and district figures cover the campaign's territory (``campaign_district``): for
organisers the turfs of its districts, for analysts the doors of its districts (doors and turfs
outside every district count only when the territory is the whole country).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from app import disclosure
from app.authz import ANALYST
from app.context import CampaignContext
from app.errors import Forbidden
from app.i18n import _
from app.services.access import territory

if TYPE_CHECKING:
    from app.db import Executor

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
    if ctx.role == ANALYST:
        if level == "turf":
            raise Forbidden(_("Analysts see progress per district and campaign only."))
        return await analyst_progress(ctx, level=level, district=district)
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
    if level in (None, "campaign"):
        out["campaign"] = campaign
    if level in (None, "district"):
        codes = [c for c in districts if c != "-"]
        if codes:
            # Doors of the polling station, in turfs or not: how much of it the turfs cover.
            for r in await ctx.session.execute(_DISTRICT_DOORS, {"codes": codes}):
                districts[r.code]["doors_in_district"] = r.n
        out["districts"] = [
            {"district_code": None if code == "-" else code, **e}
            for code, e in sorted(districts.items())
        ]
    if level in (None, "turf"):
        out["turfs"] = sorted(turfs.values(), key=lambda e: (e["district_code"] or "", e["name"]))
    return out


# ---------------------------------------------------------------- analysts (app.disclosure)
# A door of the campaign's territory: its district is one of the territory's, or it lies outside
# every district and the territory is the whole country.
_IN_TERRITORY = """(
    EXISTS (SELECT 1 FROM campaign_district cd WHERE cd.campaign_id = :c
            AND cd.district_code = dd.district_code)
    OR (dd.district_code IS NULL AND EXISTS (
        SELECT 1 FROM campaign_territory ct WHERE ct.campaign_id = :c AND ct.kind = 'country')))"""
# Doors of the active turfs by the district of the door ('-' outside every district), with the
# number of active turfs holding them.
_AREA_DOORS = text(
    f"""
    SELECT coalesce(dd.district_code, '-') AS area, count(*) AS doors,
           count(DISTINCT td.turf_id) AS turfs
    FROM turf_door td
    JOIN turf t ON t.campaign_id = td.campaign_id AND t.id = td.turf_id AND t.status = 'active'
    LEFT JOIN door_district dd ON dd.address_id = td.address_id
    WHERE td.campaign_id = :c AND td.active AND {_IN_TERRITORY}
    GROUP BY 1
    """
)
# Doors of the active turfs by district, round and latest outcome in that round.
_AREA_OUTCOMES = text(
    f"""
    WITH d AS (
        SELECT td.address_id, coalesce(dd.district_code, '-') AS area
        FROM turf_door td
        JOIN turf t ON t.campaign_id = td.campaign_id AND t.id = td.turf_id
                   AND t.status = 'active'
        LEFT JOIN door_district dd ON dd.address_id = td.address_id
        WHERE td.campaign_id = :c AND td.active AND {_IN_TERRITORY}
    ),
    latest AS (
        SELECT DISTINCT ON (v.round_id, v.address_id) v.round_id, v.address_id, v.outcome
        FROM visit v JOIN d ON d.address_id = v.address_id
        WHERE v.campaign_id = :c
          AND (CAST(:round AS int) IS NULL OR v.round_id = (
              SELECT id FROM canvass_round WHERE campaign_id = :c AND number = :round))
        ORDER BY v.round_id, v.address_id, v.visited_at DESC
    )
    SELECT d.area, r.number AS round, l.outcome, count(*) AS n
    FROM latest l
    JOIN d ON d.address_id = l.address_id
    JOIN canvass_round r ON r.campaign_id = :c AND r.id = l.round_id
    GROUP BY d.area, r.number, l.outcome
    """
)


async def _area_counts(
    session: Any, campaign_id: uuid.UUID, only_round: int | None = None
) -> tuple[dict[str, int], dict[str, int], dict[str, dict[int, dict[str, int]]]]:
    """Raw counts (never returned as such): doors and turfs per area, and per area, round and
    outcome the doors whose latest outcome in that round it is (the territory's doors only)."""
    await territory.ensure(session, campaign_id)
    doors: dict[str, int] = {}
    turfs: dict[str, int] = {}
    for r in await session.execute(_AREA_DOORS, {"c": campaign_id}):
        doors[r.area], turfs[r.area] = r.doors, r.turfs
    counts: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    params = {"c": campaign_id, "round": only_round}
    for r in await session.execute(_AREA_OUTCOMES, params):
        counts[r.area][r.round][r.outcome] = r.n
    return doors, turfs, counts


def _round_key(
    doors: dict[str, int], counts: dict[str, dict[int, dict[str, int]]], rnd: int
) -> tuple:
    return tuple(
        (area, n, tuple(counts.get(area, {}).get(rnd, {}).get(o, 0) for o in OUTCOMES))
        for area, n in sorted(doors.items())
    )


@lru_cache(maxsize=256)
def _protected_round(key: tuple, rnd: int, k: int) -> disclosure.ProgressPublication:
    """One round's table through app.disclosure (rounds share no relation, so each is
    protected alone; cached per process, since only the current round keeps changing)."""
    doors = {area: n for area, n, _ in key}
    counts = {area: {rnd: dict(zip(OUTCOMES, row, strict=True))} for area, _, row in key}
    return disclosure.protect_progress(doors, counts, rounds=[rnd], outcomes=OUTCOMES, k=k)


async def published_visited(session: Executor, campaign_id: uuid.UUID, k: int) -> dict[str, int]:
    """Doors visited in the current round per district, as analysts may read them (published
    counts only): what the ranking's coverage and its visited_doors are made of."""
    current = (
        await session.execute(
            text("SELECT number FROM current_round(:c)"),
            {"c": campaign_id},
        )
    ).scalar()
    if current is None:
        return {}
    doors, _, counts = await _area_counts(session, campaign_id, current)
    pub = _protected_round(_round_key(doors, counts, current), current, k)
    out = {}
    for area, entry in pub.areas.items():
        n = entry["rounds"][current]["visited"]
        if area != "-" and n is not None and n >= k:
            out[area] = n
    return out


async def analyst_progress(
    ctx: CampaignContext, *, level: str | None, district: str | None
) -> dict[str, Any]:
    """Progress as analysts see it (see the module docstring); the whole campaign is protected
    first and only then cut to ``level`` and ``district``, so that the published counts never
    depend on what was asked."""
    k = ctx.k_threshold
    rounds = (await ctx.session.execute(_ROUNDS_LIST, {"c": ctx.campaign_id})).all()
    current = rounds[-1].number if rounds else None
    doors, turfs, counts = await _area_counts(ctx.session, ctx.campaign_id)
    numbers = [r.number for r in rounds]
    per_round = {n: _protected_round(_round_key(doors, counts, n), n, k) for n in numbers}

    def entry(pick: Any, n_doors: int) -> dict[str, Any]:
        by_round = {n: pick(per_round[n])["rounds"][n] for n in numbers}
        now = by_round.get(current) if current is not None else None
        return {
            "doors": n_doors,
            "visited": now["visited"] if now else 0,
            "outcomes": now["outcomes"] if now else dict.fromkeys(OUTCOMES, 0),
            "rounds": by_round,
        }

    shown = {a: n for a, n in doors.items() if n >= k}
    out: dict[str, Any] = {
        "current_round": current,
        "rounds": [
            {"number": r.number, "name": r.name, "started_at": r.started_at} for r in rounds
        ],
        "k": k,
    }
    if level in (None, "campaign"):
        out["campaign"] = entry(lambda p: p.campaign, sum(shown.values())) | {
            "doors_left_out": sum(n for n in doors.values() if n < k)
        }
    if level in (None, "district"):
        codes = sorted(a for a in doors if district is None or a == district)
        in_district = {}
        named = [c for c in codes if c != "-"]
        if named:
            for r in await ctx.session.execute(_DISTRICT_DOORS, {"codes": named}):
                in_district[r.code] = r.n
        listed = []
        for code in codes:
            if code in shown:
                e = entry(lambda p, code=code: p.areas[code], doors[code])
            else:  # fewer than k doors: left out of every count (app.disclosure)
                e = {"doors": doors[code], "too_small": True}
                e.update(visited=None, outcomes=None, rounds=None)
            e.update(turfs=turfs[code])
            if code != "-":
                e["doors_in_district"] = in_district.get(code, 0)
            listed.append({"district_code": None if code == "-" else code, **e})
        out["districts"] = listed
    return out
