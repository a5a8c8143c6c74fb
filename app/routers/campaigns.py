"""Campaigns: create, list the caller's, read one."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas import CampaignCreate, CampaignOut, CampaignPatch, TerritoryIn, TerritoryOut
from app.security import CampaignScope, CurrentUserId, ServerRight, Session
from app.services.access import campaigns as service
from app.services.access import territory

router = APIRouter(tags=["campaigns"])


@router.get("/campaigns", response_model=list[CampaignOut])
async def list_campaigns(user_id: CurrentUserId, session: Session) -> list[CampaignOut]:
    """The campaigns you are a member of, with your role in each."""
    return await service.list_campaigns(session, user_id=user_id)


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create_campaign(
    data: CampaignCreate, user_id: ServerRight, session: Session
) -> CampaignOut:
    """Create a campaign; you become its admin. Needs the right to create campaigns (given on
    the server with `porte admin rights EMAIL --can-create-campaigns`, or by a server admin)."""
    return await service.create_campaign(session, user_id=user_id, data=data)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(ctx: CampaignScope) -> CampaignOut:
    """One campaign the caller belongs to, with the caller's role in it."""
    return await service.get_campaign(ctx)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
async def update_campaign(data: CampaignPatch, ctx: CampaignScope) -> CampaignOut:
    """Change the campaign's name, dates, k threshold or two-factor rule (admins)."""
    return await service.update_campaign(ctx, data=data)


@router.get("/campaigns/{campaign_id}/territory", response_model=TerritoryOut)
async def get_territory(ctx: CampaignScope) -> dict:
    """What the campaign covers: its communes, constituency, département or the whole country."""
    return await territory.describe(ctx.session, ctx.campaign_id)


@router.put("/campaigns/{campaign_id}/territory", response_model=TerritoryOut)
async def put_territory(data: TerritoryIn, ctx: CampaignScope) -> dict:
    """Change what the campaign covers (admins; audited). Unknown codes: 422 naming them.

    Ranking, district tiles, exports, OGC collections, progress and supporter aggregates are
    limited to the territory's districts from the next request.
    """
    return await territory.set_territory(ctx, data.kind, data.codes)
