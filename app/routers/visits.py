"""Visits: idempotent batches from phones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.schemas.field import BulkNotHome, VisitBatch
from app.security import CampaignScope
from app.services.field import visits

router = APIRouter(tags=["visits"])


@router.post("/campaigns/{campaign_id}/visits")
async def record_visits(body: VisitBatch, ctx: CampaignScope) -> dict[str, Any]:
    """Record a batch: per visit created, already_recorded, or rejected with a reason."""
    return await visits.record_visits(ctx, body.visits)


@router.post("/campaigns/{campaign_id}/visits/bulk-not-home")
async def bulk_not_home(body: BulkNotHome, ctx: CampaignScope) -> dict[str, Any]:
    """'Nobody home' at many doors (a building, a street segment) as one action."""
    return await visits.bulk_not_home(ctx, body)
