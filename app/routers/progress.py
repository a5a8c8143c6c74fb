"""Live progress per campaign, district and turf."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from app.security import CampaignScope
from app.services.field import progress

router = APIRouter(tags=["progress"])


@router.get("/campaigns/{campaign_id}/progress")
async def get_progress(
    ctx: CampaignScope,
    level: Literal["campaign", "district", "turf"] | None = None,
    district: str | None = None,
) -> dict[str, Any]:
    """Doors, visited, flagged, outcomes, by round; analysts: districts and campaign, >= k."""
    return await progress.progress(ctx, level=level, district=district)
