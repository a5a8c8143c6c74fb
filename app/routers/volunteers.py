"""Volunteers by name, for organisers (assign a turf by e-mail with POST /assignments)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.security import CampaignScope
from app.services.field import volunteers

router = APIRouter(tags=["assignments"])


@router.get("/campaigns/{campaign_id}/volunteers")
async def list_volunteers(
    ctx: CampaignScope,
    q: Annotated[
        str | None, Query(max_length=100, description="part of a name or an e-mail")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The campaign's volunteers: name, e-mail, active assignments (nothing about supporters)."""
    return await volunteers.list_volunteers(ctx, q=q, limit=limit, offset=offset)
