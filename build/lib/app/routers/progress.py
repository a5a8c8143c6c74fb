"""Live progress per campaign, district and turf."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from app.routers.turfs import json_response
from app.security import CampaignScope
from app.services.field import progress

router = APIRouter(tags=["progress"])


@router.get("/campaigns/{campaign_id}/progress")
async def get_progress(
    ctx: CampaignScope,
    level: Literal["campaign", "district", "turf"] | None = None,
    district: str | None = None,
) -> Response:
    """Doors, visited, flagged, outcomes, by round; analysts: districts and campaign, >= k."""
    data = await progress.progress(ctx, level=level, district=district)
    return json_response(data)
