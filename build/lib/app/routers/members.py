"""Members of a campaign and their roles (admins only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.schemas import MemberIn, MemberOut, MemberPatch
from app.security import CampaignScope
from app.services.access import members as service

router = APIRouter(tags=["members"])


@router.get("/campaigns/{campaign_id}/members", response_model=list[MemberOut])
async def list_members(ctx: CampaignScope) -> list[dict]:
    """Everyone in the campaign, with their role and whether they use two-factor sign-in."""
    return await service.list_members(ctx)


@router.post("/campaigns/{campaign_id}/members", response_model=MemberOut, status_code=201)
async def add_member(data: MemberIn, ctx: CampaignScope) -> dict:
    """Give an existing account a role in this campaign."""
    return await service.add_member(ctx, email=data.email, role=data.role)


@router.patch("/campaigns/{campaign_id}/members/{user_id}", response_model=MemberOut)
async def change_role(user_id: uuid.UUID, data: MemberPatch, ctx: CampaignScope) -> dict:
    """Change a member's role; the last admin cannot be demoted."""
    return await service.change_role(ctx, user_id=user_id, role=data.role)


@router.delete("/campaigns/{campaign_id}/members/{user_id}", status_code=204)
async def remove_member(user_id: uuid.UUID, ctx: CampaignScope) -> Response:
    """Remove a member; the last admin cannot be removed."""
    await service.remove_member(ctx, user_id=user_id)
    return Response(status_code=204)
