"""Ranking of a campaign's districts: where to knock first, and why (issue 6).

The whole ranking is one SQL statement (``app/sql/ranking.sql``); this module picks the weights,
the election, the side and the swing's reference election, splices in the optional inputs that
exist (supporters, visits), caches the result per campaign with a fingerprint of its inputs, and
shapes the explanation.

Supporters and visited doors enter the ranking as *published* counts only (app.disclosure:
the supporter counts per district and the current round's visited doors per district that an
analyst can read), never as raw counts: the score, its contributions, the factors' means and
deviations, the coverage damping and every export are then functions of what is published, so
none of them can reveal a hidden count.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import Settings
from app.disclosure import apply_k
from app.errors import InvalidInput, NotFound
from app.services.field.progress import published_visited
from app.services.people.supporters.aggregates import published_district_counts
from app.services.people.supporters.cells import ensure_cells
from app.services.reference.allocation import ensure_allocation


@dataclass(frozen=True)
class Factor:
    """One thing the score may weigh: what it is, its unit and where it comes from."""

    name: str
    label: str
    unit: str
    source: str
    needs: str = "tiles"  # tiles | doors | election | side | swing | supporters | round


FILOSOFI = "INSEE Filosofi 2019, 200 m tiles allocated to districts by doors (area where none)"
FACTORS: dict[str, Factor] = {
    f.name: f
    for f in (
        Factor("population", "Population", "persons", FILOSOFI),
        Factor("households", "Households", "households", FILOSOFI),
        Factor("poor_share", "Poor households", "share of households", FILOSOFI),
        Factor("social_housing_share", "Social housing", "share of dwellings", FILOSOFI),
        Factor("owners_share", "Owner households", "share of households", FILOSOFI),
        Factor("single_person_share", "Single-person households", "share of households", FILOSOFI),
        Factor("large_family_share", "Households of 5+ persons", "share of households", FILOSOFI),
        Factor(
            "living_standard",
            "Mean standard of living",
            "EUR per person per year",
            FILOSOFI + " (ind_snv / ind)",
        ),
        Factor("age_18_24_share", "Aged 18-24", "share of persons", FILOSOFI),
        Factor("age_25_39_share", "Aged 25-39", "share of persons", FILOSOFI),
        Factor("age_40_54_share", "Aged 40-54", "share of persons", FILOSOFI),
        Factor("age_55_64_share", "Aged 55-64", "share of persons", FILOSOFI),
        Factor("age_65_79_share", "Aged 65-79", "share of persons", FILOSOFI),
        Factor("age_80p_share", "Aged 80+", "share of persons", FILOSOFI),
        Factor(
            "imputed_share",
            "Households from imputed tiles",
            "share of households",
            FILOSOFI + " (i_est_200 = 1)",
        ),
        Factor("door_count", "Doors", "doors", "BAN/BAL addresses in the district", "doors"),
        Factor(
            "households_per_door",
            "Households per door (flats)",
            "households per door",
            "Filosofi households / BAN doors",
            "doors",
        ),
        Factor(
            "registered",
            "Registered voters",
            "voters",
            "Chosen election (Ministère de l'Intérieur results per polling station)",
            "election",
        ),
        Factor(
            "abstention_rate", "Abstention", "share of registered", "Chosen election", "election"
        ),
        Factor(
            "side_score",
            "Our side's score",
            "share of votes cast",
            "Chosen election, votes of the campaign's side",
            "side",
        ),
        Factor(
            "closeness",
            "Closeness of the result",
            "1 - |our share - best rival's share|",
            "Chosen election, campaign's side vs best other candidate",
            "side",
        ),
        Factor(
            "swing",
            "Swing (absolute)",
            "points of % of votes cast, absolute: |our share now - our share then|",
            "Chosen election vs the reference (earlier) election, votes of the campaign's side; "
            "the signed change (positive = our side gained) is each district's swing_change",
            "swing",
        ),
        Factor(
            "supporters",
            "Consented supporters",
            "supporters (published counts only: below k, or hidden with them, count 0)",
            "Campaign supporters, active and located",
            "supporters",
        ),
        Factor(
            "coverage",
            "Coverage of the current round",
            "share of doors visited",
            "Campaign visits in the current round (published counts of visited doors only)",
            "round",
        ),
    )
}

PRESETS: dict[str, dict[str, float]] = {
    # Get our voters out: where our side scores high and many stayed home.
    "mobilisation": {"side_score": 1.0, "abstention_rate": 1.0, "supporters": 0.5},
    # Convince: where the result was close and votes moved most (either way), weighted by how many
    # voters there are.
    "persuasion": {"closeness": 1.0, "swing": 0.5, "registered": 0.25},
    # Cover ground: least visited first, big districts first.
    "coverage": {"coverage": -1.0, "door_count": 0.5},
}
DEFAULT_PRESET = "mobilisation"
_SQL_DIR = resources.files("app") / "sql"
_EMPTY = {
    "ELECTION": "SELECT NULL::text AS district_code, NULL::int AS inscrits, "
    "NULL::int AS abstentions, NULL::int AS exprimes WHERE false",
    "CANDIDATES": "SELECT NULL::int AS election_id, NULL::text AS district_code, "
    "NULL::text AS nuance, NULL::text AS label, NULL::int AS voix WHERE false",
    "SWING": "SELECT NULL::text AS district_code, NULL::int AS exprimes WHERE false",
    "SUPPORTERS": "SELECT NULL::text AS district_code, NULL::bigint AS n WHERE false",
    "VISITED": "SELECT NULL::text AS district_code, NULL::bigint AS n WHERE false",
}
# Supporters and visited doors: the published counts, given as {district code: count}.
_PUBLISHED = {
    "SUPPORTERS": "SELECT key AS district_code, value::bigint AS n "
    "FROM jsonb_each_text(CAST(:published_supporters AS jsonb))",
    "VISITED": "SELECT key AS district_code, value::bigint AS n "
    "FROM jsonb_each_text(CAST(:published_visited AS jsonb))",
}


@cache
def _sql(name: str) -> str:
    body = (_SQL_DIR / name).read_text()
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))


@cache
def ranking_statement(election: bool, supporters: bool, visits: bool, swing: bool = False) -> str:
    """The one-pass ranking SQL with the optional inputs spliced in (or empty relations)."""
    sql = _sql("ranking.sql")
    parts = {
        "ELECTION": _sql("ranking_election.sql") if election else _EMPTY["ELECTION"],
        "CANDIDATES": _sql("ranking_candidates.sql") if election else _EMPTY["CANDIDATES"],
        "SWING": _sql("ranking_swing.sql") if election and swing else _EMPTY["SWING"],
        "SUPPORTERS": _PUBLISHED["SUPPORTERS"] if supporters else _EMPTY["SUPPORTERS"],
        "VISITED": _PUBLISHED["VISITED"] if visits else _EMPTY["VISITED"],
    }
    for key, fragment in parts.items():
        sql = sql.replace(f"/*{key}*/", fragment)
    return sql


# ---------------------------------------------------------------- inputs
@dataclass
class Inputs:
    """What the ranking can use right now, and why the rest is left out."""

    tables: dict[str, bool]
    election_id: int | None = None
    election_name: str | None = None
    election_reason: str | None = None
    side: list[str] | None = None
    side_text: str | None = None
    swing_from_id: int | None = None
    swing_from_name: str | None = None
    swing_reason: str | None = None
    has_round: bool = False
    round_number: int | None = None
    absent: dict[str, str] = field(default_factory=dict)
    # the published counts (app.disclosure) the ranking may use, filled by publish()
    supporters: dict[str, int] | None = None
    visited: dict[str, int] | None = None
    published: bool = False


async def publish(
    conn: AsyncConnection | AsyncSession, campaign_id: uuid.UUID, inputs: Inputs, k: int
) -> None:
    """Fill ``inputs`` with the supporter and visited-door counts analysts may read (and only
    those); supporters are left out when the campaign publishes them per tile."""
    if inputs.published:
        return
    if inputs.tables.get("supporter") and "supporters" not in inputs.absent:
        counts = await published_district_counts(conn, campaign_id, k)
        if counts is None:
            inputs.absent["supporters"] = (
                "this campaign publishes its supporter counts per 200 m tile (campaign setting "
                "supporter_cells): a second set of counts per district would let small cells be "
                "worked out by subtraction"
            )
        else:
            inputs.supporters = counts
    if inputs.has_round:
        inputs.visited = await published_visited(conn, campaign_id, k)
    inputs.published = True


_TABLES = text("SELECT t, to_regclass(t) IS NOT NULL FROM unnest(CAST(:names AS text[])) AS t")
_OPTIONAL_TABLES = [
    "district",
    "district_profile",
    "election",
    "election_result",
    "election_candidate_result",
    "supporter",
    "canvass_round",
    "visit",
    "address",
]


def parse_side(side: str | None) -> list[str] | None:
    """Side tokens (nuance codes or candidate labels), upper-cased; None when empty."""
    if not side:
        return None
    tokens = [t.strip().upper() for t in re.split(r"[,;|]", side) if t.strip()]
    return tokens or None


async def _exists(conn: AsyncConnection | AsyncSession) -> dict[str, bool]:
    rows = await conn.execute(_TABLES, {"names": _OPTIONAL_TABLES})
    return {name: bool(ok) for name, ok in rows}


_ELECTION_BY = text(
    "SELECT id, name FROM election WHERE id::text = :e OR name = :e ORDER BY id LIMIT 1"
)


async def _election_by(conn: AsyncConnection | AsyncSession, election: str, field_name: str) -> Any:
    """The loaded election called or numbered ``election``; 422 naming ``field_name`` if none."""
    row = (await conn.execute(_ELECTION_BY, {"e": str(election)})).first()
    if row is None:
        names = (await conn.execute(text("SELECT name FROM election ORDER BY id"))).scalars()
        raise InvalidInput(
            f"No loaded election is called or numbered {election!r}. Loaded: "
            f"{', '.join(names) or 'none'}.",
            field=field_name,
        )
    return row


async def _resolve_swing(
    conn: AsyncConnection | AsyncSession,
    inp: Inputs,
    swing_from: str | None,
    settings_row: dict[str, Any],
) -> None:
    """Choose the swing's reference election (request, campaign setting, else default)."""
    sql = text(_sql("ranking_swing_reference.sql"))
    binds = {"chosen": inp.election_id, "side": inp.side}
    side = inp.side_text
    if swing_from:
        ref = await _election_by(conn, swing_from, "swing_from")
        if ref.id == inp.election_id:
            raise InvalidInput(
                f"swing_from {swing_from!r} is the chosen election itself: choose an earlier one.",
                field="swing_from",
            )
        why, only = "chosen in the request", ref.id
    elif settings_row.get("swing_from_id") not in (None, inp.election_id):
        ref = (
            await conn.execute(
                text("SELECT id, name FROM election WHERE id = :e"),
                {"e": settings_row["swing_from_id"]},
            )
        ).first()
        why, only = "campaign setting", ref.id if ref else None
    else:
        ref, why, only = None, None, None
    if ref is not None:
        found = (await conn.execute(sql, {**binds, "only": only})).first()
        if found is None:
            inp.absent["swing"] = (
                f"the side {side!r} has no candidate in {ref.name} (the swing's reference "
                f"election, {why}): choose another with ?swing_from="
            )
            return
        inp.swing_from_id, inp.swing_from_name, inp.swing_reason = found.id, found.name, why
        return
    found = (await conn.execute(sql, {**binds, "only": None})).first()
    if found is None:
        inp.absent["swing"] = (
            f"no other loaded election has a candidate of the side {side!r}: load an earlier "
            "election, or choose one with ?swing_from="
        )
        return
    inp.swing_from_id, inp.swing_from_name = found.id, found.name
    inp.swing_reason = "most recent other loaded election with the side (none chosen)"


async def resolve_inputs(
    conn: AsyncConnection | AsyncSession,
    campaign_id: uuid.UUID,
    *,
    election: str | None,
    side: str | None,
    settings_row: dict[str, Any] | None,
    swing_from: str | None = None,
) -> Inputs:
    """Choose the election, side and swing reference; say which factors have no data (and why)."""
    tables = await _exists(conn)
    inp = Inputs(tables=tables)
    settings_row = settings_row or {}
    has_election_tables = (
        tables["election"] and tables["election_result"] and tables["election_candidate_result"]
    )
    if has_election_tables:
        if election:
            row = await _election_by(conn, election, "election")
            inp.election_id, inp.election_name = row.id, row.name
            inp.election_reason = "chosen in the request"
        else:
            eid = settings_row.get("election_id")
            row = None
            if eid is not None:
                row = (
                    await conn.execute(
                        text("SELECT id, name FROM election WHERE id = :e"), {"e": eid}
                    )
                ).first()
                inp.election_reason = "campaign setting"
            if row is None:
                row = (
                    await conn.execute(
                        text(
                            "SELECT id, name FROM election ORDER BY loaded_at DESC, id DESC LIMIT 1"
                        )
                    )
                ).first()
                inp.election_reason = "latest loaded election (none chosen)"
            if row is not None:
                inp.election_id, inp.election_name = row.id, row.name
    side_text = side or settings_row.get("side")
    if not side_text:
        side_text = (
            await conn.execute(text("SELECT side FROM campaign WHERE id = :c"), {"c": campaign_id})
        ).scalar()
    inp.side, inp.side_text = parse_side(side_text), side_text or None

    if not has_election_tables:
        reason = "no election tables (reference data not installed)"
    elif inp.election_id is None:
        reason = "no election loaded"
    else:
        reason = None
    if reason:
        for name in ("registered", "abstention_rate", "side_score", "closeness", "swing"):
            inp.absent[name] = reason
    elif inp.side is None:
        for name in ("side_score", "closeness", "swing"):
            inp.absent[name] = (
                'no side chosen: set it with PUT /campaigns/{cid}/weights {"side": "NUANCE"} '
                "or ?side="
            )
    else:
        await _resolve_swing(conn, inp, swing_from, settings_row)
    if not tables["supporter"]:
        inp.absent["supporters"] = "no supporter table (supporters module not installed)"
    if tables["canvass_round"] and tables["visit"]:
        inp.round_number = (
            await conn.execute(
                text("SELECT max(number) FROM canvass_round WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
        ).scalar()
        inp.has_round = inp.round_number is not None
        if not inp.has_round:
            inp.absent["coverage"] = "no canvass round started yet"
    else:
        inp.absent["coverage"] = "no visit tables (visits module not installed)"
    return inp


# ---------------------------------------------------------------- weights
def validate_weights(weights: dict[str, Any]) -> dict[str, float]:
    """Weights keyed by known factor names with finite numbers; 422 naming the bad one."""
    out: dict[str, float] = {}
    for name, value in weights.items():
        if name not in FACTORS:
            raise InvalidInput(
                f"Unknown factor {name!r}. Known factors: {', '.join(FACTORS)}.",
                field=f"weights.{name}",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"The weight of {name!r} must be a number.", field=f"weights.{name}")
        if not -100 <= float(value) <= 100:
            raise InvalidInput(
                f"The weight of {name!r} must be between -100 and 100.", field=f"weights.{name}"
            )
        out[name] = float(value)
    return out


def preset_weights(preset: str) -> dict[str, float]:
    """The weights of a named preset; 422 for an unknown one."""
    if preset not in PRESETS:
        raise InvalidInput(
            f"Unknown preset {preset!r}. Choose one of: {', '.join(PRESETS)}.", field="preset"
        )
    return dict(PRESETS[preset])


_SETTINGS = text(
    "SELECT weights, base_preset, election_id, swing_from_id, side, communes, updated_at "
    "FROM ranking_settings WHERE campaign_id = :c"
)


async def load_settings(
    conn: AsyncConnection | AsyncSession, campaign_id: uuid.UUID
) -> dict | None:
    """The campaign's saved ranking settings, or None."""
    row = (await conn.execute(_SETTINGS, {"c": campaign_id})).mappings().first()
    return dict(row) if row else None


async def save_settings(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    weights: dict[str, Any] | None,
    preset: str | None,
    election: str | None,
    side: str | None,
    communes: list[str] | None,
    swing_from: str | None = None,
) -> dict[str, Any]:
    """Validate and store custom weights (starting from a preset if given); clears the cache."""
    base = preset_weights(preset) if preset else {}
    base.update(validate_weights(weights or {}))
    if not base:
        raise InvalidInput("Give at least one weight or a preset.", field="weights")
    election_id = None
    if election is not None:
        inp = await resolve_inputs(
            session, campaign_id, election=election, side=None, settings_row=None
        )
        election_id = inp.election_id
    swing_from_id = None
    if swing_from is not None:
        swing_from_id = (await _election_by(session, swing_from, "swing_from")).id
        if swing_from_id == election_id:
            raise InvalidInput(
                "swing_from is the chosen election itself: choose an earlier one.",
                field="swing_from",
            )
    await session.execute(
        text(
            "INSERT INTO ranking_settings (campaign_id, weights, base_preset, election_id, "
            "swing_from_id, side, communes, updated_at, updated_by) VALUES (:c, CAST(:w AS jsonb), "
            ":p, :e, :sf, :s, :cm, clock_timestamp(), :u) ON CONFLICT (campaign_id) DO UPDATE SET "
            "weights = EXCLUDED.weights, base_preset = EXCLUDED.base_preset, election_id = "
            "EXCLUDED.election_id, swing_from_id = EXCLUDED.swing_from_id, side = EXCLUDED.side, "
            "communes = EXCLUDED.communes, "
            "updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by"
        ),
        {
            "c": campaign_id,
            "w": json.dumps(base),
            "p": preset,
            "e": election_id,
            "sf": swing_from_id,
            "s": side,
            "cm": communes,
            "u": user_id,
        },
    )
    await session.execute(
        text("DELETE FROM ranking_cache WHERE campaign_id = :c"), {"c": campaign_id}
    )
    return {
        "weights": base,
        "base_preset": preset,
        "election_id": election_id,
        "swing_from_id": swing_from_id,
        "side": side,
        "communes": communes,
    }


# ---------------------------------------------------------------- computing
_FINGERPRINT_PARTS = {
    "election": "(SELECT count(*) || ':' || coalesce(max(loaded_at)::text, '') FROM election)",
    "canvass_round": "(SELECT count(*) || ':' || coalesce(max(number), 0) FROM canvass_round "
    "WHERE campaign_id = :c)",
}


async def fingerprint(
    conn: AsyncConnection | AsyncSession,
    campaign_id: uuid.UUID,
    tables: dict[str, bool],
    published: str = "",
) -> str:
    """A digest of every input of the ranking (allocation version, elections, rounds, and the
    published supporter and visited-door counts, given as ``published``)."""
    parts = [
        "CAST(:published AS text)",
        "(SELECT version::text FROM allocation_state)",
        "(SELECT coalesce(side, '') || ':' || k_threshold FROM campaign WHERE id = :c)",
        "(SELECT coalesce(max(updated_at)::text, '') FROM ranking_settings WHERE campaign_id = :c)",
    ]
    parts += [sql for table, sql in _FINGERPRINT_PARTS.items() if tables.get(table)]
    sql = "SELECT md5(concat_ws('|', " + ", ".join(parts) + "))"
    return (await conn.execute(text(sql), {"c": campaign_id, "published": published})).scalar_one()


def _factor_report(
    weights: dict[str, float], stats: dict[str, list], inp: Inputs, n_districts: int
) -> list[dict[str, Any]]:
    report = []
    for name, f in FACTORS.items():
        mean, sd, n = stats.get(name, [None, None, 0])
        if name in inp.absent:
            status, reason = "absent", inp.absent[name]
        elif not n:
            status, reason = "absent", "no value in any district"
        elif not sd and name in ("supporters", "coverage") and not mean:
            what = "supporters" if name == "supporters" else "visited doors"
            status = "no_variation"
            reason = f"no district has k or more {what} yet (counted as 0): contributes 0"
        elif not sd:
            status, reason = "no_variation", "same value in every district: contributes 0"
        else:
            status, reason = "used", None
        report.append(
            {
                "name": name,
                "label": f.label,
                "unit": f.unit,
                "source": f.source,
                "weight": weights.get(name, 0.0),
                "status": status,
                "reason": reason,
                "mean": mean,
                "sd": sd,
                "districts_with_value": n,
                "districts_missing": n_districts - n if n else n_districts,
            }
        )
    return report


def _district(row: Any, weights: dict[str, float]) -> dict[str, Any]:
    factors = row.factors if isinstance(row.factors, dict) else json.loads(row.factors)
    counts = row.counts if isinstance(row.counts, dict) else json.loads(row.counts)
    contributions = []
    for name, (value, z, weight, contribution) in factors.items():
        if weight == 0 and name not in weights:
            continue
        contributions.append(
            {
                "factor": name,
                "value": value,
                "standardised": z,
                "weight": weight,
                "contribution": contribution,
                "missing": value is None,
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
        "values": {name: v[0] for name, v in factors.items()},
        # signed swing in points of % of votes cast (positive = our side gained); the factor
        # "swing" is its absolute value
        "swing_change": row.swing_change,
        "counts": counts,
    }


async def compute(
    conn: AsyncConnection | AsyncSession,
    campaign_id: uuid.UUID,
    *,
    weights: dict[str, float],
    inputs: Inputs,
    k: int,
    communes: list[str] | None = None,
) -> dict[str, Any]:
    """Run the one-pass ranking SQL and shape its rows (every district, best first)."""
    await publish(conn, campaign_id, inputs, k)
    effective = {n: w for n, w in weights.items() if n not in inputs.absent}
    sql = ranking_statement(
        inputs.election_id is not None,
        inputs.supporters is not None,
        inputs.has_round,
        inputs.swing_from_id is not None,
    )
    rows = (
        await conn.execute(
            text(sql),
            {
                "campaign_id": campaign_id,
                "k": k,
                "weights": json.dumps(effective),
                "election_id": inputs.election_id,
                "swing_from_id": inputs.swing_from_id,
                "side": inputs.side,
                "communes": communes,
                "has_supporters": inputs.supporters is not None,
                "has_round": inputs.has_round,
                "published_supporters": json.dumps(inputs.supporters or {}),
                "published_visited": json.dumps(inputs.visited or {}),
            },
        )
    ).all()
    stats = {}
    if rows:
        stats = rows[0].stats if isinstance(rows[0].stats, dict) else json.loads(rows[0].stats)
    districts = [_district(r, weights) for r in rows]
    return {
        "weights": weights,
        "election": {
            "id": inputs.election_id,
            "name": inputs.election_name,
            "why": inputs.election_reason,
        },
        "swing_from": {
            "id": inputs.swing_from_id,
            "name": inputs.swing_from_name,
            "why": inputs.swing_reason,
        },
        "side": inputs.side_text,
        "current_round": inputs.round_number,
        "k": k,
        "factors": _factor_report(weights, stats, inputs, len(rows)),
        "rules": RULES,
        "districts": districts,
    }


RULES = (
    "Each factor is standardised across the campaign's districts (z = (value - mean) / standard "
    "deviation). A district with no value for a factor counts as the mean (z = 0, flagged "
    "'missing'); a factor with no data or no spread contributes 0 and is listed with its reason. "
    "contribution = weight x z x damping, damping = 1 - coverage of the current round, and the "
    "score is the sum of the contributions. Supporter and visited-door counts enter as published: "
    "a count below k, or hidden with one (so that it cannot be worked out by subtraction), counts "
    "as 0 and is shown blank."
)


# ---------------------------------------------------------------- the API's view
async def ranking(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    *,
    k: int,
    preset: str | None = None,
    election: str | None = None,
    side: str | None = None,
    swing_from: str | None = None,
    use_cache: bool = True,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The campaign's full ranking, from the cache when none of its inputs changed.

    ``settings`` give the data keys in case supporters' district codes must be recomputed after a
    contour import (``ensure_cells``; the environment's settings when omitted)."""
    settings_row = await load_settings(session, campaign_id)
    if preset:
        weights, weights_from = preset_weights(preset), f"preset {preset}"
    elif settings_row and settings_row["weights"]:
        weights, weights_from = dict(settings_row["weights"]), "campaign weights"
    else:
        weights, weights_from = preset_weights(DEFAULT_PRESET), f"preset {DEFAULT_PRESET} (default)"
    communes = settings_row["communes"] if settings_row else None
    await ensure_allocation(session)
    await ensure_cells(session, campaign_id, settings)
    inputs = await resolve_inputs(
        session,
        campaign_id,
        election=election,
        side=side,
        settings_row=settings_row,
        swing_from=swing_from,
    )
    key = hashlib.md5(
        json.dumps(
            [weights, inputs.election_id, inputs.side, communes, k, inputs.swing_from_id],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    await publish(session, campaign_id, inputs, k)
    published = json.dumps(
        [inputs.supporters, inputs.visited, sorted(inputs.absent)], sort_keys=True
    )
    fp = await fingerprint(session, campaign_id, inputs.tables, published)
    if use_cache:
        cached = (
            await session.execute(
                text(
                    "SELECT result FROM ranking_cache WHERE campaign_id = :c AND cache_key = :k "
                    "AND fingerprint = :f"
                ),
                {"c": campaign_id, "k": key, "f": fp},
            )
        ).scalar()
        if cached is not None:
            result = cached if isinstance(cached, dict) else json.loads(cached)
            # same election and reference, but perhaps chosen another way this time
            result["election"]["why"] = inputs.election_reason
            result["swing_from"]["why"] = inputs.swing_reason
            result["cached"] = True
            return result
    result = await compute(
        session, campaign_id, weights=weights, inputs=inputs, k=k, communes=communes
    )
    result["weights_from"] = weights_from
    result["preset"] = preset
    await session.execute(
        text(
            "INSERT INTO ranking_cache (campaign_id, cache_key, fingerprint, computed_at, result) "
            "VALUES (:c, :k, :f, clock_timestamp(), CAST(:r AS jsonb)) ON CONFLICT (campaign_id, "
            "cache_key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, computed_at = "
            "EXCLUDED.computed_at, result = EXCLUDED.result"
        ),
        {"c": campaign_id, "k": key, "f": fp, "r": json.dumps(result)},
    )
    result["cached"] = False
    return result


def top(result: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """The ranking cut to its first ``limit`` districts."""
    out = dict(result)
    out["total_districts"] = len(result["districts"])
    if limit is not None:
        out["districts"] = result["districts"][:limit]
    return out


def one_district(result: dict[str, Any], code: str) -> dict[str, Any]:
    """One district's breakdown; 404 when the campaign has no such district."""
    for d in result["districts"]:
        if d["code"] == code:
            out = {k: v for k, v in result.items() if k != "districts"}
            out["district"] = d
            out["total_districts"] = len(result["districts"])
            return out
    raise NotFound(f"No district {code!r} in this campaign's ranking.")


def reasons(district: dict[str, Any], n: int = 3) -> list[str]:
    """The district's first ``n`` reasons, in words (largest contributions first)."""
    out = []
    for c in district["contributions"]:
        if c["contribution"] == 0:
            continue
        f = FACTORS[c["factor"]]
        value = "n/a" if c["value"] is None else _fmt(c["value"], f.unit)
        direction = "above" if c["standardised"] > 0 else "below"
        out.append(
            f"{f.label} {value} ({abs(c['standardised']):.1f} sd {direction} mean) "
            f"{c['contribution']:+.2f}"
        )
        if len(out) == n:
            break
    return out


def _fmt(value: float, unit: str) -> str:
    if unit.startswith("share") or unit.startswith("1 -"):
        return f"{value * 100:.1f} %"
    if unit.startswith("points"):
        return f"{value:.1f} pts"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


# ---------------------------------------------------------------- request-level entry points
async def ranking_for(
    ctx: Any,
    *,
    preset: str | None,
    election: str | None,
    side: str | None,
    limit: int | None,
    swing_from: str | None = None,
) -> dict[str, Any]:
    """GET /ranking: the ranked districts (counts below k blank), cut to ``limit``."""
    result = await ranking(
        ctx.session,
        ctx.campaign_id,
        k=ctx.k_threshold,
        preset=preset,
        election=election,
        side=side,
        swing_from=swing_from,
        settings=ctx.settings,
    )
    result = dict(result)
    result["districts"] = [apply_k(d, ctx.k_threshold) for d in result["districts"]]
    return top(result, limit)


async def district_for(
    ctx: Any,
    code: str,
    *,
    preset: str | None,
    election: str | None,
    side: str | None,
    swing_from: str | None = None,
) -> dict[str, Any]:
    """GET /districts/{code}: one district's full breakdown."""
    result = await ranking(
        ctx.session,
        ctx.campaign_id,
        k=ctx.k_threshold,
        preset=preset,
        election=election,
        side=side,
        swing_from=swing_from,
        settings=ctx.settings,
    )
    out = one_district(result, code)
    out["district"] = apply_k(out["district"], ctx.k_threshold)
    return out


async def weights_for(ctx: Any) -> dict[str, Any]:
    """GET /weights: the campaign's weights, the presets and the catalogue of factors."""
    row = await load_settings(ctx.session, ctx.campaign_id)
    return {
        "weights": dict(row["weights"]) if row and row["weights"] else None,
        "base_preset": row["base_preset"] if row else None,
        "election_id": row["election_id"] if row else None,
        "swing_from_id": row["swing_from_id"] if row else None,
        "side": row["side"] if row else None,
        "communes": row["communes"] if row else None,
        "default_preset": DEFAULT_PRESET,
        "presets": PRESETS,
        "factors": [
            {"name": f.name, "label": f.label, "unit": f.unit, "source": f.source}
            for f in FACTORS.values()
        ],
    }
