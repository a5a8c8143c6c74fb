"""Members of a campaign and their roles (admins only). A campaign always keeps one admin."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.context import CampaignContext
from app.errors import Conflict, NotFound
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
    row = (
        await ctx.session.execute(
            text(_SELECT + " AND m.user_id = :u FOR UPDATE OF m"),
            {"c": ctx.campaign_id, "u": user_id},
        )
    ).first()
    if row is None:
        raise NotFound("No such member in this campaign.", field="user_id")
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
        raise Conflict("This is the campaign's last admin: make someone else admin first.")


async def add_member(ctx: CampaignContext, *, email: str, role: str) -> dict:
    """Give an existing account a role in the campaign."""
    user = (
        await ctx.session.execute(
            text("SELECT id FROM app_user WHERE email = :e AND is_active"), {"e": email.lower()}
        )
    ).first()
    if user is None:
        raise NotFound(
            "No account with this e-mail. Create it on the server with "
            f"`porte admin create {email}`, then add it here.",
            field="email",
        )
    inserted = await ctx.session.execute(
        text(
            "INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r) "
            "ON CONFLICT DO NOTHING"
        ),
        {"c": ctx.campaign_id, "u": user.id, "r": role},
    )
    if inserted.rowcount == 0:
        raise Conflict(
            "This account is already a member; change its role with PATCH.", field="email"
        )
    await audit.record(ctx, action="access.member.add", object=str(user.id), details={"role": role})
    return await _member(ctx, user.id)


async def change_role(ctx: CampaignContext, *, user_id: uuid.UUID, role: str) -> dict:
    """Change a member's role (never removing the last admin)."""
    member = await _member(ctx, user_id)
    if member["role"] == "admin" and role != "admin":
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
    if member["role"] == "admin":
        await _keep_an_admin(ctx, user_id)
    await ctx.session.execute(
        text("DELETE FROM membership WHERE campaign_id = :c AND user_id = :u"),
        {"c": ctx.campaign_id, "u": user_id},
    )
    await audit.record(
        ctx, action="access.member.remove", object=str(user_id), details={"role": member["role"]}
    )
