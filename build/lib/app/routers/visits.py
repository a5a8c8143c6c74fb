"""Visits: idempotent batches from phones."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.routers.turfs import committed
from app.security import CampaignScope
from app.services.field import visits

router = APIRouter(tags=["visits"])


@router.post("/campaigns/{campaign_id}/visits")
async def record_visits(body: visits.VisitBatch, ctx: CampaignScope) -> Response:
    """Record a batch: per visit created, already_recorded, or rejected with a reason."""
    data = await visits.record_visits(ctx, body.visits)
    return await committed(ctx, data)


@router.post("/campaigns/{campaign_id}/visits/bulk-not-home")
async def bulk_not_home(body: visits.BulkNotHome, ctx: CampaignScope) -> Response:
    """'Nobody home' at many doors (a building, a street segment) as one action."""
    data = await visits.bulk_not_home(ctx, body)
    return await committed(ctx, data)
