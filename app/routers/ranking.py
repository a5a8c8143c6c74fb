"""Ranking of districts: where to knock first, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.schemas.ranking import WeightsIn
from app.security import CampaignScope, ReplicaScope
from app.services.ranking import service

router = APIRouter(tags=["ranking"])

Preset = Annotated[
    str | None,
    Query(description="mobilisation | persuasion | coverage (default: campaign weights)"),
]
Election = Annotated[str | None, Query(description="Loaded election id or name (default: latest)")]
Side = Annotated[
    str | None, Query(description="Nuance code(s) or candidate label, comma-separated")
]
SwingFrom = Annotated[
    str | None,
    Query(
        description="Reference (earlier) election of the swing, id or name (default: the most "
        "recent other loaded election with the side)"
    ),
]


@router.get("/campaigns/{campaign_id}/ranking")
async def get_ranking(
    ctx: ReplicaScope,
    preset: Preset = None,
    election: Election = None,
    side: Side = None,
    limit: Annotated[int | None, Query(ge=1, le=100000)] = None,
    swing_from: SwingFrom = None,
) -> dict:
    """Ranked districts, each with its score and per-factor contributions (they add up)."""
    return await service.ranking_for(
        ctx, preset=preset, election=election, side=side, limit=limit, swing_from=swing_from
    )


@router.get("/campaigns/{campaign_id}/districts/{code}")
async def get_district(
    code: str,
    ctx: ReplicaScope,
    preset: Preset = None,
    election: Election = None,
    side: Side = None,
    swing_from: SwingFrom = None,
) -> dict:
    """One district's rank, score and the full breakdown of its score."""
    return await service.district_for(
        ctx, code, preset=preset, election=election, side=side, swing_from=swing_from
    )


@router.get("/campaigns/{campaign_id}/weights")
async def get_weights(ctx: CampaignScope) -> dict:
    """The campaign's custom weights, the presets, and every factor with unit and source."""
    return await service.weights_for(ctx)


@router.put("/campaigns/{campaign_id}/weights")
async def put_weights(data: WeightsIn, ctx: CampaignScope) -> dict:
    """Set custom weights (unknown factor -> 422 naming it); the ranking is recomputed."""
    return await service.save_settings(
        ctx.session,
        ctx.campaign_id,
        ctx.user_id,
        weights=data.weights,
        preset=data.preset,
        election=data.election,
        side=data.side,
        communes=data.communes,
        swing_from=data.swing_from,
    )
