"""Volunteer invite links (organisers and admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.schemas import InviteIn, InviteOut
from app.security import CampaignScope
from app.services.access import invites as service

router = APIRouter(tags=["invites"])


@router.post("/campaigns/{campaign_id}/invites", response_model=InviteOut, status_code=201)
async def create_invite(data: InviteIn, ctx: CampaignScope) -> dict:
    """Create an invite link (shown again later with GET .../link, audited)."""
    return await service.create_invite(
        ctx, assignment_id=data.assignment_id, label=data.label, expires_at=data.expires_at
    )


@router.get("/campaigns/{campaign_id}/invites", response_model=list[InviteOut])
async def list_invites(ctx: CampaignScope, include_inactive: bool = False) -> list[dict]:
    """Active invites (with ``include_inactive``: expired and revoked ones too)."""
    return await service.list_invites(ctx, include_inactive=include_inactive)


@router.delete("/campaigns/{campaign_id}/invites/{invite_id}", status_code=204)
async def revoke_invite(invite_id: uuid.UUID, ctx: CampaignScope) -> None:
    """Revoke an invite: phones using it lose access at their next request."""
    await service.revoke_invite(ctx, invite_id=invite_id)


@router.get("/campaigns/{campaign_id}/invites/{invite_id}/link", response_model=InviteOut)
async def invite_link(invite_id: uuid.UUID, ctx: CampaignScope) -> dict:
    """An active invite's link again, to send or show (audited)."""
    return await service.invite_link_again(ctx, invite_id=invite_id)


@router.get(
    "/campaigns/{campaign_id}/invites/{invite_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def invite_qr(invite_id: uuid.UUID, ctx: CampaignScope) -> Response:
    """The invite link as a QR code to print or show."""
    svg = await service.invite_qr_svg(ctx, invite_id=invite_id)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
