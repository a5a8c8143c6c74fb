"""Ranking of a campaign's districts: where to knock first, and why.

The entry points behind the API, the exports and ``porte rank``. A ranking is read in three
steps, each kept until its inputs change: the campaign's territory (``access.territory``), the
per-factor values and z-scores of its districts (``snapshot``), one weighted sum of them ranked
(``scoring``). A page is then an index range scan by rank, an explanation one row by code. The
counts below k are blanked by ``app.disclosure.apply_k`` for every reader (API, exports, OGC,
CLI).

Supporters and visited doors enter the ranking as *published* counts only (app.disclosure: the
supporter counts per district and the current round's visited doors per district that an analyst
can read), never as raw counts: the score, its contributions, the factors' means and deviations,
the coverage damping and every export are then functions of what is published, so none of them
can reveal a hidden count (``snapshot._campaign_factors``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import astuple, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.context import CampaignContext
from app.disclosure import COUNT_FACTORS, COUNTS, apply_k  # noqa: F401  (import surface)
from app.errors import InvalidInput, NotFound
from app.i18n import _
from app.services.access import territory
from app.services.ranking import scoring as scorings
from app.services.ranking import snapshot as snapshots
from app.services.ranking import sql
from app.services.ranking.factors import (  # noqa: F401  (the import surface of exports/ogc/CLI)
    DEFAULT_PRESET,
    FACTORS,
    PRESETS,
    RULES,
    join_side,
    parse_side,
    preset_weights,
    reasons,
    validate_weights,
)
from app.services.ranking.inputs import Conn, election_by, shown
from app.services.reference.allocation import ensure_allocation
from app.services.reference.elections import resolve_side

MAX_PAGE = 1000


@dataclass(frozen=True)
class Choice:
    """What a reader asked of a ranking; each left None takes the campaign's own setting: the
    weights' preset, the election, our side, the swing's reference (earlier) election."""

    preset: str | None = None
    election: str | None = None
    side: str | None = None
    swing_from: str | None = None


OWN = Choice()

# ---------------------------------------------------------------- side by name
# What was typed -> the tokens it resolved to, per version of the imported results
# (reference_state.elections): resolving reads every side of every election.
_RESOLVED: dict[tuple[str, int], str] = {}
_RESOLVED_MAX = 512


async def resolved_side(conn: Conn, side: str, elections: int | None = None) -> str:
    """The side as the ranking matches and stores it: nuance codes and candidate or list labels
    (``"Ensemble"`` -> ``"ENS, LENS"``, ``"Brégeon"`` -> ``"BREGEON MAUD"``), found by
    ``resolve_side`` among the imported results; 422 (field ``side``) listing the close matches
    when the name is unknown or fits several parties. ``elections``: the results' version, for the
    cache (none: resolved again)."""
    key = (side.strip(), elections if elections is not None else -1)
    if elections is not None and key in _RESOLVED:
        return _RESOLVED[key]
    text_ = join_side(await resolve_side(conn, side))
    if elections is not None:
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = text_
    return text_


# ---------------------------------------------------------------- settings
_SETTINGS = text(
    "SELECT weights, base_preset, election_id, swing_from_id, side, updated_at "
    "FROM ranking_settings WHERE campaign_id = :c"
)
_SAVE = text(
    "INSERT INTO ranking_settings (campaign_id, weights, base_preset, election_id, "
    "swing_from_id, side, updated_at, updated_by) VALUES (:c, CAST(:w AS jsonb), :p, :e, :sf, "
    ":s, clock_timestamp(), :u) ON CONFLICT (campaign_id) DO UPDATE SET weights = "
    "EXCLUDED.weights, base_preset = EXCLUDED.base_preset, election_id = EXCLUDED.election_id, "
    "swing_from_id = EXCLUDED.swing_from_id, side = EXCLUDED.side, updated_at = "
    "EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by"
)


async def load_settings(conn: Conn, campaign_id: uuid.UUID) -> dict | None:
    """The campaign's saved ranking settings, or None."""
    row = (await conn.execute(_SETTINGS, {"c": campaign_id})).mappings().first()
    return dict(row) if row else None


async def save_settings(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    weights: dict[str, Any] | None,
    choice: Choice,
) -> dict[str, Any]:
    """Validate and store custom weights (starting from the chosen preset if any) and the
    choice's election, side and swing reference as the campaign's own. The side is stored as it
    resolves (``resolved_side``: codes and labels), so that the ranking compares codes."""
    preset, election, side, swing_from = astuple(choice)
    base = preset_weights(preset) if preset else {}
    base.update(validate_weights(weights or {}))
    if not base:
        raise InvalidInput(_("Give at least one weight or a preset."), field="weights")
    election_id = (await election_by(session, election, "election")).id if election else None
    swing_from_id = None
    if swing_from is not None:
        swing_from_id = (await election_by(session, swing_from, "swing_from")).id
        if swing_from_id == election_id:
            raise InvalidInput(
                _("swing_from is the chosen election itself: choose an earlier one."),
                field="swing_from",
            )
    side_asked = side.strip() if side and side.strip() else None
    side = await resolved_side(session, side_asked) if side_asked else None
    await session.execute(
        _SAVE,
        {
            "c": campaign_id,
            "w": json.dumps(base),
            "p": preset,
            "e": election_id,
            "sf": swing_from_id,
            "s": side,
            "u": user_id,
        },
    )
    return {
        "weights": base,
        "base_preset": preset,
        "election_id": election_id,
        "swing_from_id": swing_from_id,
        "side": side,
        "side_asked": side_asked,
    }


def choose_weights(preset: str | None, state: Any) -> tuple[dict[str, float], str]:
    """The request's preset, else the campaign's weights, else the default preset."""
    if preset:
        return preset_weights(preset), _("preset {name}").format(name=preset)
    if state.weights:
        saved = state.weights if isinstance(state.weights, dict) else json.loads(state.weights)
        return {n: float(w) for n, w in saved.items()}, _("campaign weights")
    return preset_weights(DEFAULT_PRESET), _("preset {name} (default)").format(name=DEFAULT_PRESET)


# ---------------------------------------------------------------- shaping
def _no_value_reason(name: str) -> str:
    needs = FACTORS[name].needs
    if needs == "tiles":
        return _(
            "no INSEE tile is allocated to this territory's districts: import the Filosofi 200 m "
            "tiles of its communes (porte import tiles FILE, docs/data.md); the allocation "
            "follows by itself"
        )
    if needs == "doors":
        return _(
            "no door (BAN/BAL address) in this territory's districts: import the addresses of "
            "its communes (porte import addresses FILE, docs/data.md)"
        )
    return _("no value in any district of this territory")


def factor_report(weights: dict[str, float], snap: snapshots.Snapshot) -> list[dict[str, Any]]:
    """Each factor: its weight, whether it was used, and if not why (and what to do); mean and
    spread. In the reader's language."""
    report = []
    stats = snap.stats()
    for name, f in FACTORS.items():
        mean, sd, n = stats.get(name, (None, None, 0))
        if name in snap.inputs.absent:
            status, reason = "absent", shown(snap.inputs.absent[name])
        elif not n:
            status, reason = "absent", _no_value_reason(name)
        elif not sd and name == "supporters" and not mean:
            status = "no_variation"
            reason = _("no district has k or more supporters yet (counted as 0): contributes 0")
        elif not sd and name == "coverage" and not mean:
            status = "no_variation"
            reason = _("no district has k or more visited doors yet (counted as 0): contributes 0")
        elif not sd and f.needs == "doors" and not mean:
            status, reason = "no_variation", _no_value_reason(name)
        elif not sd:
            status, reason = "no_variation", _("same value in every district: contributes 0")
        else:
            status, reason = "used", None
        report.append(
            {
                **f.shown(),
                "weight": weights.get(name, 0.0),
                "status": status,
                "reason": reason,
                "mean": mean,
                "sd": sd,
                "districts_with_value": n,
                "districts_missing": snap.districts - n,
            }
        )
    return report


_COUNT_COLUMNS = (
    "population",
    "households",
    "poor_households",
    "social_dwellings",
    "doors",
    "tiles",
    "registered",
    "abstentions",
    "votes_cast",
    "supporters",
    "supporters_suppressed",
    "visited_doors",
    "visited_doors_suppressed",
)


def district_from_row(
    row: Any, names: list[str], weights: dict[str, float], applied: dict[str, float]
) -> dict[str, Any]:
    """A ranked district with its contributions (largest first), values and counts."""
    contributions = []
    for i, name in enumerate(names):
        if name not in applied and name not in weights:
            continue
        weight = applied.get(name, 0.0)
        z = row.z[i] or 0.0
        contributions.append(
            {
                "factor": name,
                "value": row.v[i],
                "standardised": z,
                "weight": weight,
                "contribution": weight * z * row.damping,
                "missing": row.v[i] is None,
            }
        )
    contributions.sort(key=lambda c: -abs(c["contribution"]))
    return {
        "rank": row.rank,
        "code": row.code,
        "name": row.name,
        "commune_code": row.commune_code,
        "commune_name": row.commune_name,
        "score": row.score,
        "damping": row.damping,
        "contributions": contributions,
        "values": dict(zip(names, row.v, strict=True)),
        # signed swing in points of % of votes cast (positive = our side gained); the factor
        # "swing" is its absolute value
        "swing_change": row.swing_change,
        "counts": {c: getattr(row, c) for c in _COUNT_COLUMNS},
    }


# ---------------------------------------------------------------- computing
async def prepare(
    conn: Conn,
    campaign_id: uuid.UUID,
    *,
    k: int,
    choice: Choice = OWN,
    weights: dict[str, float] | None = None,
    refresh: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Territory, snapshot and scoring of a request, each refreshed if its inputs changed.

    ``weights`` (already validated) take the place of the preset and the campaign's weights;
    ``refresh`` recomputes the snapshot and the scoring even when nothing changed (benchmarks);
    ``settings`` give the data keys in case supporters' district codes must be recomputed after
    a contour import (``ensure_cells``; the environment's settings when omitted).
    """
    await ensure_allocation(conn)
    territory_version = await territory.ensure(conn, campaign_id)
    state = (await conn.execute(sql.STATE, {"c": campaign_id})).one()
    side_asked = side = choice.side
    if side is not None:
        side = await resolved_side(conn, side, state.elections)
    given = weights is not None
    if weights is not None:
        weights_from = _("given weights")
    else:
        weights, weights_from = choose_weights(choice.preset, state)
    snap = await snapshots.ensure(
        conn,
        campaign_id,
        state=state,
        territory_version=territory_version,
        k=k,
        election=choice.election,
        side=side,
        swing_from=choice.swing_from,
        force=refresh,
        settings=settings,
    )
    scoring = await scorings.ensure(conn, campaign_id, snap, weights, k=k, force=refresh)
    own = not (choice.preset or choice.election or side or choice.swing_from or given)
    if own and state.map_scoring != scoring.id:
        await scorings.make_default(conn, campaign_id, scoring, snap)
    inp = snap.inputs
    return {
        "snapshot": snap,
        "scoring": scoring,
        "header": {
            "weights": weights,
            "weights_from": weights_from,
            "preset": choice.preset,
            "election": {
                "id": inp.election_id,
                "name": inp.election_name,
                "why": shown(inp.election_reason),
            },
            "swing_from": {
                "id": inp.swing_from_id,
                "name": inp.swing_from_name,
                "why": shown(inp.swing_reason),
            },
            "side": inp.side_text,
            "side_asked": side_asked,
            "current_round": inp.round_number,
            "k": k,
            "territory": {"kind": state.territory_kind, "codes": list(state.territory_codes)},
            "factors": factor_report(weights, snap),
            "rules": _(RULES),
            "total_districts": snap.districts,
            # why there is nothing to rank, and what to do (None when there is something)
            "empty": await territory.why_empty(conn, campaign_id) if not snap.districts else None,
            "computed_at": scoring.computed_at,
            "cached": not snap.refreshed and not scoring.recomputed,
        },
    }


async def ranking(
    conn: Conn,
    campaign_id: uuid.UUID,
    *,
    k: int,
    choice: Choice = OWN,
    limit: int | None = None,
    after: int = 0,
    weights: dict[str, float] | None = None,
    refresh: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The campaign's ranked districts from rank ``after`` + 1 (all of them when no limit).

    Counts are as stored (below-k supporter and visit counts already blank): readers apply
    ``apply_k`` for the rest. ``weights`` and ``refresh``: see ``prepare``.
    """
    prepared = await prepare(
        conn,
        campaign_id,
        k=k,
        choice=choice,
        weights=weights,
        refresh=refresh,
        settings=settings,
    )
    snap, scoring, result = prepared["snapshot"], prepared["scoring"], prepared["header"]
    rows = await conn.execute(
        sql.PAGE,
        {
            "c": campaign_id,
            "s": scoring.id,
            "snap": snap.id,
            "after": after,
            "limit": snap.districts if limit is None else limit,
        },
    )
    result["districts"] = [
        district_from_row(r, snap.names, result["weights"], scoring.weights) for r in rows
    ]
    last = result["districts"][-1]["rank"] if result["districts"] else after
    result["next_after"] = last if last < snap.districts else None
    return result


async def explain(
    conn: Conn,
    campaign_id: uuid.UUID,
    code: str,
    *,
    k: int,
    choice: Choice = OWN,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """One district's rank, score and full breakdown; 404 outside the territory."""
    prepared = await prepare(conn, campaign_id, k=k, choice=choice, settings=settings)
    snap, scoring, out = prepared["snapshot"], prepared["scoring"], prepared["header"]
    row = (
        await conn.execute(
            sql.ONE, {"c": campaign_id, "s": scoring.id, "snap": snap.id, "code": code}
        )
    ).first()
    if row is None:
        empty = out["empty"]
        if empty is not None:
            raise NotFound(
                _("No district {code!r} in this campaign's ranking: {detail} {action}").format(
                    code=code, detail=empty["detail"], action=empty["action"]
                ),
                field="code",
                extra={"empty": empty},
            )
        raise NotFound(
            _(
                "No district {code!r} in this campaign's ranking (its territory): GET "
                "/campaigns/{cid}/ranking lists them, GET /campaigns/{cid}/territory says what "
                "it covers."
            ).format(code=code, cid=campaign_id),
            field="code",
        )
    out["district"] = district_from_row(row, snap.names, out["weights"], scoring.weights)
    return out


# ---------------------------------------------------------------- request-level entry points
async def ranking_for(
    ctx: CampaignContext,
    choice: Choice,
    *,
    limit: int,
    offset: int = 0,
    after: int | None = None,
) -> dict[str, Any]:
    """GET /ranking: a page of ranked districts (counts below k blank), best first."""
    start = max(offset, after or 0)
    result = await ranking(
        ctx.session,
        ctx.campaign_id,
        k=ctx.k_threshold,
        choice=choice,
        limit=min(limit, MAX_PAGE),
        after=start,
        settings=ctx.settings,
    )
    result["districts"] = [apply_k(d, ctx.k_threshold) for d in result["districts"]]
    result["limit"], result["offset"] = min(limit, MAX_PAGE), start
    return result


async def district_for(ctx: CampaignContext, code: str, choice: Choice) -> dict[str, Any]:
    """GET /districts/{code}: one district's full breakdown."""
    out = await explain(
        ctx.session, ctx.campaign_id, code, k=ctx.k_threshold, choice=choice, settings=ctx.settings
    )
    out["district"] = apply_k(out["district"], ctx.k_threshold)
    return out


async def weights_for(ctx: CampaignContext) -> dict[str, Any]:
    """GET /weights: the campaign's weights, the presets and the catalogue of factors."""
    row = await load_settings(ctx.session, ctx.campaign_id)
    return {
        "weights": dict(row["weights"]) if row and row["weights"] else None,
        "base_preset": row["base_preset"] if row else None,
        "election_id": row["election_id"] if row else None,
        "swing_from_id": row["swing_from_id"] if row else None,
        "side": row["side"] if row else None,
        "default_preset": DEFAULT_PRESET,
        "presets": PRESETS,
        "factors": [f.shown() for f in FACTORS.values()],
    }
