"""Per-factor values and z-scores of a campaign's territory, kept until their inputs change.

A snapshot is what one ranking request asks for (election, side, swing reference, k) over the
campaign's territory: its values and z-scores per district (``ranking_value``), the per-factor
mean, standard deviation and count, and the inputs it was resolved to. It is stamped with the
version of everything it was computed from (``sql.STATE``): the allocation, the election
results, the territory's district list, the campaign's doors (visits, flags, rounds), turfs
and supporters. On a request:

- every version unchanged: used as stored (no statement beyond two index reads);
- allocation, elections or territory changed: rebuilt (``ranking_values.sql``, then the
  campaign's factors);
- only visits, turfs or supporters changed: only the campaign's factors (supporters, coverage
  and the damping) are recomputed (``ranking_campaign_factors.sql``), from the counts
  app.disclosure publishes (supporters per district: ``aggregates.published_district_counts``;
  visited doors of the current round per district: ``progress.published_visited``, which counts
  the doors of active turfs, hence the turfs' version).

Concurrent requests of the same snapshot wait for the one refreshing it (advisory lock), then
find it fresh.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.config import Settings
from app.services.field.progress import published_visited
from app.services.people.supporters.aggregates import published_district_counts
from app.services.ranking import sql
from app.services.ranking.factors import CAMPAIGN_FACTORS, NAMES, POSITION
from app.services.ranking.inputs import NO_ROUND, Conn, Inputs, because, resolve

KEEP = 4  # snapshots kept per campaign (besides the one the map draws)
REFERENCE_VERSIONS = ("allocation", "elections", "territory")
CAMPAIGN_VERSIONS = ("doors", "turfs", "supporters")

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_ROUND = text("SELECT max(number) FROM canvass_round WHERE campaign_id = :c")


@dataclass
class Snapshot:
    """A snapshot as read or just refreshed."""

    id: int
    version: int
    inputs: Inputs
    names: list[str]
    mean: list[float | None]
    sd: list[float | None]
    n: list[int]
    districts: int
    refreshed_at: datetime
    refreshed: str | None = None  # None (used as stored), "full" or "campaign factors"

    def stats(self) -> dict[str, tuple[float | None, float | None, int]]:
        """factor -> (mean, sd, districts with a value)."""
        return {
            name: (self.mean[i], self.sd[i], self.n[i] or 0) for i, name in enumerate(self.names)
        }


def versions(state: Any, territory_version: int) -> dict[str, int]:
    """The versions of a ranking's inputs, from the campaign's ``sql.STATE`` row."""
    return {
        "allocation": int(state.allocation),
        "elections": int(state.elections),
        "territory": int(territory_version),
        "doors": int(state.doors),
        "turfs": int(state.turfs),
        "supporters": int(state.supporters),
    }


def request_key(
    state: Any, *, k: int, election: str | None, side: str | None, swing_from: str | None
) -> str:
    """What a snapshot is for: the request's choices, else the campaign's saved ones, k and the
    partition its supporter counts are published on."""
    asked = [
        ["election", election, state.election_id],
        ["side", side or state.side or state.campaign_side],
        ["swing_from", swing_from, state.swing_from_id],
        ["k", k],
        ["supporter_cells", state.supporter_cells],
    ]
    return hashlib.md5(json.dumps(asked, default=str).encode()).hexdigest()


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value or "{}")


def _from_row(row: Any, refreshed: str | None = None) -> Snapshot:
    inputs = _json(row.inputs)
    size = len(row.factor_names)
    return Snapshot(
        id=row.id,
        version=row.version,
        inputs=Inputs.from_json(inputs),
        names=list(row.factor_names),
        mean=list(row.mean or [None] * size),
        sd=list(row.sd or [None] * size),
        n=list(row.n or [0] * size),
        districts=row.districts,
        refreshed_at=row.refreshed_at,
        refreshed=refreshed,
    )


def _stored_versions(row: Any) -> dict[str, int]:
    return _json(row.versions)


async def ensure(
    conn: Conn,
    campaign_id: uuid.UUID,
    *,
    state: Any,
    territory_version: int,
    k: int,
    election: str | None = None,
    side: str | None = None,
    swing_from: str | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> Snapshot:
    """The campaign's snapshot for this request, refreshed first when an input changed.
    ``settings``: the data keys, in case supporters' district codes must be recomputed."""
    key = request_key(state, k=k, election=election, side=side, swing_from=swing_from)
    now = versions(state, territory_version)
    binds = {"c": campaign_id, "k": key}
    row = (await conn.execute(sql.SNAPSHOT, binds)).first()
    if row is not None and not force and _stored_versions(row) == now:
        return _from_row(row)
    await conn.execute(_LOCK, {"key": f"ranking:{campaign_id}:{key}"})
    row = (await conn.execute(sql.SNAPSHOT, binds)).first()
    if row is not None and not force and _stored_versions(row) == now:
        return _from_row(row)  # refreshed by the request we waited for
    stored = _stored_versions(row) if row is not None else {}
    full = force or row is None or any(stored.get(v) != now[v] for v in REFERENCE_VERSIONS)
    if full:
        inputs = await resolve(
            conn, campaign_id, election=election, side=side, swing_from=swing_from, state=state
        )
    else:
        inputs = Inputs.from_json(_json(row.inputs))
        await _refresh_round(conn, campaign_id, inputs)
    if row is None:
        sid = (
            await conn.execute(
                sql.NEW_SNAPSHOT,
                {**binds, "versions": "{}", "inputs": "{}", "names": list(NAMES)},
            )
        ).scalar_one()
        mean, sd, n = [None] * len(NAMES), [None] * len(NAMES), [0] * len(NAMES)
    else:
        sid = row.id
        mean, sd, n = list(row.mean or []), list(row.sd or []), list(row.n or [])
    if full:
        districts, mean, sd, n = await _build_values(conn, campaign_id, sid, inputs)
    else:
        districts = row.districts
    supporters = full or stored.get("supporters") != now["supporters"]
    await _campaign_factors(conn, campaign_id, sid, inputs, k, (mean, sd, n), supporters, settings)
    saved = await _save(conn, campaign_id, sid, now, inputs, (mean, sd, n), districts)
    if row is None:
        await conn.execute(sql.OLD_SNAPSHOTS, {"c": campaign_id, "keep": KEEP})
    return Snapshot(
        id=sid,
        version=saved.version,
        inputs=inputs,
        names=list(NAMES),
        mean=mean,
        sd=sd,
        n=n,
        districts=districts,
        refreshed_at=saved.refreshed_at,
        refreshed="full" if full else "campaign factors",
    )


async def _save(
    conn: Conn,
    campaign_id: uuid.UUID,
    sid: int,
    now: dict[str, Any],
    inputs: Inputs,
    stats: tuple[list, list, list],
    districts: int,
) -> Any:
    """Store a snapshot's inputs, statistics and the versions it was made for; its new version
    and refresh time."""
    mean, sd, n = stats
    return (
        await conn.execute(
            sql.SAVE_SNAPSHOT,
            {
                "c": campaign_id,
                "s": sid,
                "versions": json.dumps(now),
                "inputs": json.dumps(inputs.as_json()),
                "names": list(NAMES),
                "mean": mean,
                "sd": sd,
                "n": n,
                "districts": districts,
            },
        )
    ).one()


async def _refresh_round(conn: Conn, campaign_id: uuid.UUID, inputs: Inputs) -> None:
    """A round may have started since the snapshot was built (it bumps the doors version)."""
    inputs.round_number = (await conn.execute(_ROUND, {"c": campaign_id})).scalar()
    inputs.has_round = inputs.round_number is not None
    if inputs.has_round:
        inputs.absent.pop("coverage", None)
    else:
        inputs.absent["coverage"] = because(NO_ROUND, cid=str(campaign_id))


async def _build_values(
    conn: Conn, campaign_id: uuid.UUID, sid: int, inputs: Inputs
) -> tuple[int, list, list, list]:
    """Every district's public-data values and z-scores (ranking_values.sql); their stats."""
    await conn.execute(sql.CLEAR_VALUES, {"c": campaign_id, "s": sid})
    side = inputs.side if inputs.election_id is not None else None
    row = (
        await conn.execute(
            sql.named("ranking_values"),
            {
                "campaign_id": campaign_id,
                "snapshot_id": sid,
                "election_id": inputs.election_id,
                "side": side,
                "swing_from_id": inputs.swing_from_id,
            },
        )
    ).one()
    size = len(NAMES)
    pad = size - len(row.mean or [])
    mean = list(row.mean or []) + [None] * pad
    sd = list(row.sd or []) + [None] * pad
    n = list(row.n or []) + [0] * pad
    return row.districts, mean, sd, n


async def _campaign_factors(
    conn: Conn,
    campaign_id: uuid.UUID,
    sid: int,
    inputs: Inputs,
    k: int,
    stats: tuple[list, list, list],
    supporters: bool,
    settings: Settings | None = None,
) -> None:
    """Coverage and damping of every district, and its supporters when they changed
    (ranking_campaign_factors.sql), from the published counts only; their stats written into
    ``stats``."""
    mean, sd, n = stats
    si, ci = (POSITION[name] for name in CAMPAIGN_FACTORS)
    counted: dict[str, int] = {}
    if supporters and "supporters" not in inputs.absent:
        counted = await published_district_counts(conn, campaign_id, k, settings) or {}
    visited = await published_visited(conn, campaign_id, k) if inputs.has_round else {}
    row = (
        await conn.execute(
            sql.named("ranking_campaign_factors"),
            {
                "campaign_id": campaign_id,
                "snapshot_id": sid,
                "k": k,
                "has_round": inputs.has_round,
                "si": si,
                "ci": ci,
                "supporters": supporters,
                "published_supporters": json.dumps(counted),
                "published_visited": json.dumps(visited),
            },
        )
    ).one()
    mean[si - 1], sd[si - 1], n[si - 1] = row.s_mean, row.s_sd, row.s_n
    mean[ci - 1], sd[ci - 1], n[ci - 1] = row.c_mean, row.c_sd, row.c_n
