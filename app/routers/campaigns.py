"""Campaigns: create, list the caller's, read one."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas import CampaignOut
from app.security import CampaignScope
from app.services import campaigns as service

router = APIRouter(tags=["campaigns"])


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(ctx: CampaignScope) -> CampaignOut:
    """One campaign the caller belongs to, with the caller's role in it."""
    return await service.get_campaign(ctx)
