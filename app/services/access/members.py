"""Members of a campaign and their roles (admins only). A campaign always keeps one admin.

New members join by invitation (``app.services.access.member_invitations``)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.authz import ADMIN
from app.context import CampaignContext
from app.errors import Conflict
from app.i18n import _
from app.services.access import audit

_SELECT = (
    "SELECT m.user_id, u.email, m.role, u.totp_enabled, m.created_at "
    "FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.campaign_id = :c"
)


async def list_members(ctx: CampaignContext) -> list[dict]:
    """Every member of the campaign with their role."""
    rows = await ctx.session.execute(
        text(_SELECT + " ORDER BY m.role, u.email"), {"c": ctx.campaign_id}
    )
    return [dict(r._mapping) for r in rows]


async def _member(ctx: CampaignContext, user_id: uuid.UUID) -> dict:
    row = await ctx.one(
        _SELECT + " AND m.user_id = :u FOR UPDATE OF m",
        u=user_id,
        missing=_("No such member in this campaign."),
        field="user_id",
    )
    return dict(row._mapping)


async def _keep_an_admin(ctx: CampaignContext, user_id: uuid.UUID) -> None:
    others = (
        await ctx.session.execute(
            text(
                "SELECT count(*) FROM membership WHERE campaign_id = :c AND role = 'admin' "
                "AND user_id <> :u"
            ),
            {"c": ctx.campaign_id, "u": user_id},
        )
    ).scalar_one()
    if others == 0:
        raise Conflict(_("This is the campaign's last admin: make someone else admin first."))


async def change_role(ctx: CampaignContext, *, user_id: uuid.UUID, role: str) -> dict:
    """Change a member's role (never removing the last admin)."""
    member = await _member(ctx, user_id)
    if member["role"] == ADMIN and role != ADMIN:
        await _keep_an_admin(ctx, user_id)
    await ctx.session.execute(
        text("UPDATE membership SET role = :r WHERE campaign_id = :c AND user_id = :u"),
        {"c": ctx.campaign_id, "u": user_id, "r": role},
    )
    await audit.record(
        ctx,
        action="access.member.role",
        object=str(user_id),
        details={"from": member["role"], "to": role},
    )
    return {**member, "role": role}


async def remove_member(ctx: CampaignContext, *, user_id: uuid.UUID) -> None:
    """Remove a member from the campaign (never the last admin)."""
    member = await _member(ctx, user_id)
    if member["role"] == ADMIN:
        await _keep_an_admin(ctx, user_id)
    await ctx.session.execute(
        text("DELETE FROM membership WHERE campaign_id = :c AND user_id = :u"),
        {"c": ctx.campaign_id, "u": user_id},
    )
    await audit.record(
        ctx, action="access.member.remove", object=str(user_id), details={"role": member["role"]}
    )
