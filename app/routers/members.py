"""Members of a campaign and their roles (admins), and invitations to join it by e-mail."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from app.schemas import (
    InvitationAcceptedOut,
    InvitationPreviewOut,
    InvitationRegisterIn,
    InvitationTokenIn,
    MemberIn,
    MemberInvitationOut,
    MemberOut,
    MemberPatch,
    TokenOut,
)
from app.security import (
    CampaignScope,
    CurrentUserId,
    DatabaseDep,
    SettingsDep,
    client_address,
)
from app.services.access import member_invitations as invitations
from app.services.access import members as service

router = APIRouter(tags=["members"])


@router.get("/campaigns/{campaign_id}/members", response_model=list[MemberOut])
async def list_members(ctx: CampaignScope) -> list[dict]:
    """Everyone in the campaign, with their role and whether they use two-factor sign-in."""
    return await service.list_members(ctx)


@router.post(
    "/campaigns/{campaign_id}/members", response_model=MemberInvitationOut, status_code=202
)
async def invite_member(data: MemberIn, ctx: CampaignScope) -> dict:
    """Invite someone by e-mail to join with a role: admins any role, organisers volunteers.

    The link is e-mailed to the address; the person joins by accepting it (signed in with that
    address's account, or creating the account from the link). The answer is the same whether
    or not the address has an account."""
    return await invitations.invite_member(ctx, email=data.email, role=data.role)


@router.get("/campaigns/{campaign_id}/member-invitations", response_model=list[MemberInvitationOut])
async def list_invitations(ctx: CampaignScope, include_inactive: bool = False) -> list[dict]:
    """Pending invitations (with ``include_inactive``: accepted, expired and revoked ones too);
    organisers see the volunteer ones."""
    return await invitations.list_invitations(ctx, include_inactive=include_inactive)


@router.delete("/campaigns/{campaign_id}/member-invitations/{invitation_id}", status_code=204)
async def revoke_invitation(invitation_id: uuid.UUID, ctx: CampaignScope) -> None:
    """Revoke a pending invitation: its link stops working."""
    await invitations.revoke_invitation(ctx, invitation_id=invitation_id)


@router.post("/invitations/preview", response_model=InvitationPreviewOut)
async def preview_invitation(
    request: Request, data: InvitationTokenIn, db: DatabaseDep, settings: SettingsDep
) -> dict:
    """What an invitation link offers: campaign, role, address, and whether that address has an
    account (for the page the link opens). Throttled per address."""
    return await invitations.preview(db, settings, token=data.token, client=client_address(request))


@router.post("/invitations/accept", response_model=InvitationAcceptedOut)
async def accept_invitation(
    request: Request,
    data: InvitationTokenIn,
    user_id: CurrentUserId,
    db: DatabaseDep,
    settings: SettingsDep,
) -> dict:
    """Join the campaign with the signed-in account (the one the invitation was sent to)."""
    return await invitations.accept(
        db,
        settings,
        token=data.token,
        user_id=user_id,
        client=client_address(request),
        request_id=getattr(request.state, "request_id", None),
    )


@router.post("/invitations/register", response_model=TokenOut, status_code=201)
async def register_from_invitation(
    request: Request, data: InvitationRegisterIn, db: DatabaseDep, settings: SettingsDep
) -> TokenOut:
    """Create the invited address's account with a password and join; you are signed in."""
    _joined, pair = await invitations.register(
        db,
        settings,
        token=data.token,
        password=data.password,
        display_name=data.display_name,
        client=client_address(request),
        request_id=getattr(request.state, "request_id", None),
    )
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.patch("/campaigns/{campaign_id}/members/{user_id}", response_model=MemberOut)
async def change_role(user_id: uuid.UUID, data: MemberPatch, ctx: CampaignScope) -> dict:
    """Change a member's role; the last admin cannot be demoted."""
    return await service.change_role(ctx, user_id=user_id, role=data.role)


@router.delete("/campaigns/{campaign_id}/members/{user_id}", status_code=204)
async def remove_member(user_id: uuid.UUID, ctx: CampaignScope) -> None:
    """Remove a member; the last admin cannot be removed."""
    await service.remove_member(ctx, user_id=user_id)
