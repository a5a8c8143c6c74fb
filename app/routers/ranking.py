"""Ranking of districts: where to knock first, and why (paginated; one district explained)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from app.errors import InvalidInput
from app.i18n import _
from app.schemas.ranking import WeightsIn
from app.security import CampaignScope, ReplicaScope
from app.services.ranking import service

router = APIRouter(tags=["ranking"])


def _json(data: dict) -> Response:
    """orjson: a page of 1,000 districts is serialised in milliseconds, not tens of them."""
    return Response(orjson.dumps(data, default=str), media_type="application/json")


Preset = Annotated[
    str | None,
    Query(description="mobilisation | persuasion | coverage (default: campaign weights)"),
]
Election = Annotated[str | None, Query(description="Loaded election id or name (default: latest)")]
Side = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Our side: a nuance code (ENS), a party or list name (Ensemble), or a "
        "candidate's name; several separated by commas (an alliance). Unknown or ambiguous: 422 "
        "with the close matches. GET /elections/{id}/sides lists them.",
    ),
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
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE, description="Districts per page")] = 100,
    offset: Annotated[int, Query(ge=0, description="Districts to skip (ranks 1..offset)")] = 0,
    after: Annotated[
        int | None,
        Query(ge=0, description="Keyset paging: districts ranked after this rank (next_after)"),
    ] = None,
    swing_from: SwingFrom = None,
) -> Response:
    """A page of ranked districts, each with its score and per-factor contributions (they add
    up); ``total_districts`` and ``next_after`` tell what is left. No geometry: the map reads
    the district vector tiles."""
    return _json(
        await service.ranking_for(
            ctx,
            service.Choice(preset, election, side, swing_from),
            limit=limit,
            offset=offset,
            after=after,
        )
    )


@router.get("/campaigns/{campaign_id}/districts/{code}")
async def get_district(
    code: str,
    ctx: ReplicaScope,
    preset: Preset = None,
    election: Election = None,
    side: Side = None,
    swing_from: SwingFrom = None,
) -> Response:
    """One district's rank, score and the full breakdown of its score."""
    return _json(
        await service.district_for(ctx, code, service.Choice(preset, election, side, swing_from))
    )


@router.get("/campaigns/{campaign_id}/weights")
async def get_weights(ctx: CampaignScope) -> dict:
    """The campaign's custom weights, the presets, and every factor with unit and source."""
    return await service.weights_for(ctx)


@router.put("/campaigns/{campaign_id}/weights")
async def put_weights(data: WeightsIn, ctx: CampaignScope) -> dict:
    """Set custom weights (unknown factor -> 422 naming it); the ranking is recomputed."""
    if data.communes is not None:
        raise InvalidInput(
            _(
                "communes is no longer a ranking setting: set the campaign's territory with "
                'PUT /campaigns/{cid}/territory {{"kind": "communes", "codes": [...]}}.'
            ).format(cid=ctx.campaign_id),
            field="communes",
        )
    return await service.save_settings(
        ctx.session,
        ctx.campaign_id,
        ctx.user_id,
        weights=data.weights,
        choice=service.Choice(data.preset, data.election, data.side, data.swing_from),
    )
