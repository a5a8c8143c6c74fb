"""A weighted sum of a snapshot's z-scores, ranked and stored: what pages and tiles read.

A scoring is one set of weights over one snapshot (``ranking_scoring``), with each district's
score and rank (``ranking_score``, keyed by rank so that a page is an index range scan) and the
per-commune summary the district tiles draw at low zoom (``ranking_commune_score``). It is
recomputed when its snapshot was refreshed since (``snapshot_version``); a change of weights is
one statement (``app/sql/ranking_scoring.sql``). ``ranking_default`` names the scoring the
district tiles draw: the campaign's own weights and election (the analyst map's ranking).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from app.services.ranking import sql
from app.services.ranking.factors import NAMES
from app.services.ranking.inputs import Conn
from app.services.ranking.snapshot import Snapshot

KEEP = 8  # scorings kept per campaign (besides the one the map draws)
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


@dataclass(frozen=True)
class Scoring:
    """A stored scoring."""

    id: int
    weights: dict[str, float]  # the weights applied (factors without data left out)
    computed_at: datetime
    recomputed: bool


def effective_weights(weights: dict[str, float], snap: Snapshot) -> dict[str, float]:
    """The weights that apply: non-zero, on factors the snapshot has data for."""
    return {n: w for n, w in weights.items() if w and n not in snap.inputs.absent}


def weights_key(weights: dict[str, float]) -> str:
    """The same key for the same weights, whatever their order."""
    return hashlib.md5(json.dumps(sorted(weights.items())).encode()).hexdigest()


async def ensure(
    conn: Conn,
    campaign_id: uuid.UUID,
    snap: Snapshot,
    weights: dict[str, float],
    *,
    k: int,
    force: bool = False,
) -> Scoring:
    """The scoring of these weights over ``snap``, computed first when missing or outdated."""
    applied = effective_weights(weights, snap)
    key = weights_key(applied)
    binds = {"c": campaign_id, "s": snap.id, "k": key}
    row = (await conn.execute(sql.SCORING, binds)).first()
    if row is not None and not force and row.snapshot_version == snap.version:
        return Scoring(row.id, applied, row.computed_at, recomputed=False)
    await conn.execute(_LOCK, {"key": f"scoring:{campaign_id}:{snap.id}:{key}"})
    row = (await conn.execute(sql.SCORING, binds)).first()
    if row is not None and not force and row.snapshot_version == snap.version:
        return Scoring(row.id, applied, row.computed_at, recomputed=False)
    saved = (
        await conn.execute(sql.NEW_SCORING, {**binds, "w": json.dumps(applied), "v": snap.version})
    ).one()
    if row is not None:
        await conn.execute(sql.CLEAR_SCORES, {"c": campaign_id, "s": saved.id})
        await conn.execute(sql.CLEAR_COMMUNE_SCORES, {"c": campaign_id, "s": saved.id})
    await conn.execute(
        sql.named("ranking_scoring"),
        {
            "campaign_id": campaign_id,
            "snapshot_id": snap.id,
            "scoring_id": saved.id,
            "k": k,
            "w": [applied.get(name, 0.0) for name in NAMES],
        },
    )
    if row is None:
        await conn.execute(sql.OLD_SCORINGS, {"c": campaign_id, "keep": KEEP})
    return Scoring(saved.id, applied, saved.computed_at, recomputed=True)


async def make_default(
    conn: Conn, campaign_id: uuid.UUID, scoring: Scoring, snap: Snapshot
) -> None:
    """The district tiles draw this scoring from now on (the campaign's own ranking)."""
    await conn.execute(sql.SET_DEFAULT, {"c": campaign_id, "s": scoring.id, "snap": snap.id})
