"""Assignments: a turf given to a volunteer account or an invite, its door list frozen."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.authz import VOLUNTEER
from app.context import CampaignContext
from app.errors import Conflict, InvalidInput
from app.i18n import _
from app.schemas.field import AssignmentCreate
from app.services.field.rounds import start_round

ACTIVE_SQL = (
    "(a.ended_at IS NULL AND a.starts_at <= now() AND (a.ends_at IS NULL OR a.ends_at > now()))"
)


_SELECT = f"""
    SELECT a.id, a.turf_id, t.name AS turf_name, t.district_code, a.volunteer_user_id,
           a.invite_id, a.starts_at, a.ends_at, a.ended_at, a.created_at,
           {ACTIVE_SQL} AS active,
           (SELECT count(*) FROM assignment_door ad WHERE ad.campaign_id = a.campaign_id
              AND ad.assignment_id = a.id) AS door_count
    FROM assignment a
    JOIN turf t ON t.campaign_id = a.campaign_id AND t.id = a.turf_id
"""


async def _with_volunteer(ctx: CampaignContext, body: AssignmentCreate) -> AssignmentCreate:
    """The request with its volunteer's account found by e-mail (``volunteer_email``); 422 when
    the e-mail or the account is not a member of the campaign."""
    s, c = ctx.session, ctx.campaign_id
    if body.volunteer_email is not None:
        found = (
            await s.execute(
                text(
                    "SELECT m.user_id FROM membership m JOIN app_user u ON u.id = m.user_id "
                    "WHERE m.campaign_id = :c AND u.email = :e AND u.is_active"
                ),
                {"c": c, "e": str(body.volunteer_email).lower()},
            )
        ).first()
        if found is None:
            raise InvalidInput(
                _(
                    "Nobody with this e-mail is a member of the campaign: invite them first, or "
                    "assign the turf to an invite link. GET /campaigns/{id}/volunteers lists them."
                ),
                field="volunteer_email",
            )
        body = body.model_copy(update={"volunteer_user_id": found.user_id})
    if body.volunteer_user_id is not None:
        member = (
            await s.execute(
                text("SELECT role FROM membership WHERE campaign_id = :c AND user_id = :u"),
                {"c": c, "u": body.volunteer_user_id},
            )
        ).first()
        if member is None:
            raise InvalidInput(
                _(
                    "This account is not a member of the campaign; add it as a volunteer first, "
                    "or assign the turf to an invite link."
                ),
                field="volunteer_user_id",
            )
    return body


async def _check_invite(ctx: CampaignContext, invite_id: uuid.UUID) -> None:
    """The invite the turf is assigned to must exist, be usable (not revoked or expired) and not
    already be the link of an active assignment (404, 422, 409)."""
    invite = await ctx.one(
        "SELECT i.assignment_id, i.revoked_at, i.expires_at <= now() AS expired, "
        f"(SELECT {ACTIVE_SQL} FROM assignment a WHERE a.campaign_id = i.campaign_id "
        "AND a.id = i.assignment_id) AS bound_active "
        "FROM invite i WHERE i.campaign_id = :c AND i.id = :i FOR UPDATE",
        i=invite_id,
        missing=_("No such invite in this campaign."),
        field="invite_id",
    )
    if invite.revoked_at is not None or invite.expired:
        raise InvalidInput(
            _("This invite is revoked or expired; create a new one."), field="invite_id"
        )
    if invite.bound_active:
        raise Conflict(
            _(
                "This invite is already used for the active assignment {assignment_id}; end it "
                "first or create another invite."
            ).format(assignment_id=invite.assignment_id),
            field="invite_id",
        )


async def create_assignment(ctx: CampaignContext, body: AssignmentCreate) -> dict[str, Any]:
    """Create the assignment, freeze the turf's doors into it, end the turf's previous one."""
    s, c = ctx.session, ctx.campaign_id
    turf = await ctx.one(
        "SELECT status, name FROM turf WHERE campaign_id = :c AND id = :t FOR UPDATE",
        t=body.turf_id,
        missing=_("No such turf in this campaign."),
        field="turf_id",
    )
    if turf.status != "active":
        raise Conflict(
            _("The turf {name!r} is archived; assign an active turf.").format(name=turf.name),
            field="turf_id",
        )
    if body.ends_at is not None and body.ends_at <= datetime.now(body.ends_at.tzinfo):
        raise InvalidInput(_("ends_at is already past; give a future end."), field="ends_at")
    body = await _with_volunteer(ctx, body)
    if body.invite_id is not None:
        await _check_invite(ctx, body.invite_id)
    ended = (
        await s.execute(
            text(
                "UPDATE assignment a SET ended_at = now() WHERE a.campaign_id = :c "
                "AND a.turf_id = :t AND a.ended_at IS NULL "
                "AND (a.ends_at IS NULL OR a.ends_at > now()) RETURNING a.id"
            ),
            {"c": c, "t": body.turf_id},
        )
    ).all()
    aid = (
        await s.execute(
            text(
                "INSERT INTO assignment (campaign_id, turf_id, volunteer_user_id, invite_id, "
                "starts_at, ends_at, created_by) VALUES (:c, :t, :u, :i, coalesce(:s, now()), :e, "
                ":by) RETURNING id"
            ),
            {
                "c": c,
                "t": body.turf_id,
                "u": body.volunteer_user_id,
                "i": body.invite_id,
                "s": body.starts_at,
                "e": body.ends_at,
                "by": ctx.user_id,
            },
        )
    ).scalar_one()
    await s.execute(
        text(
            "INSERT INTO assignment_door (campaign_id, assignment_id, address_id, seq) "
            "SELECT campaign_id, :a, address_id, seq FROM turf_door "
            "WHERE campaign_id = :c AND turf_id = :t AND active"
        ),
        {"c": c, "a": aid, "t": body.turf_id},
    )
    if body.invite_id is not None:
        await s.execute(
            text("UPDATE invite SET assignment_id = :a WHERE campaign_id = :c AND id = :i"),
            {"c": c, "a": aid, "i": body.invite_id},
        )
    await start_round(ctx, only_if_none=True)
    out = await get_assignment(ctx, aid)
    out["replaced"] = [r.id for r in ended]
    return out


async def get_assignment(ctx: CampaignContext, assignment_id: uuid.UUID) -> dict[str, Any]:
    """One assignment (staff: any; volunteers: their own, else 404)."""
    row = await ctx.one(
        _SELECT + " WHERE a.campaign_id = :c AND a.id = :a" + _mine_clause(ctx),
        a=assignment_id,
        **_mine_params(ctx),
        missing=_("No such assignment (or it is not yours)."),
        field="assignment_id",
    )
    return dict(row._mapping)


def _mine_clause(ctx: CampaignContext) -> str:
    if ctx.role != VOLUNTEER:
        return ""
    return " AND (a.volunteer_user_id = :me OR a.id = :my_assignment)"


def _mine_params(ctx: CampaignContext) -> dict[str, Any]:
    if ctx.role != VOLUNTEER:
        return {}
    return {"me": ctx.user_id, "my_assignment": ctx.assignment_id}


async def list_assignments(
    ctx: CampaignContext, *, turf_id: uuid.UUID | None, active_only: bool
) -> list[dict[str, Any]]:
    """Staff: every assignment (filters); volunteers: their own, or the invite's."""
    where = " WHERE a.campaign_id = :c" + _mine_clause(ctx)
    params: dict[str, Any] = {"c": ctx.campaign_id, **_mine_params(ctx)}
    if turf_id is not None:
        where += " AND a.turf_id = :t"
        params["t"] = turf_id
    if active_only:
        where += f" AND {ACTIVE_SQL}"
    rows = await ctx.session.execute(text(_SELECT + where + " ORDER BY a.created_at DESC"), params)
    return [dict(r._mapping) for r in rows]


async def end_assignment(ctx: CampaignContext, assignment_id: uuid.UUID) -> dict[str, Any]:
    """End an assignment now (idempotent); its volunteer can no longer record visits."""
    await get_assignment(ctx, assignment_id)
    await ctx.session.execute(
        text(
            "UPDATE assignment SET ended_at = now() WHERE campaign_id = :c AND id = :a "
            "AND ended_at IS NULL"
        ),
        {"c": ctx.campaign_id, "a": assignment_id},
    )
    return await get_assignment(ctx, assignment_id)
