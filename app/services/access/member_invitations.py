"""Joining a campaign by invitation: an e-mail with a link, accepted by the person it was sent to.

Adding a member (``POST /campaigns/{id}/members``) no longer looks the account up for the
inviter: it stores an invitation and sends a link to the address, through the campaign's mail
server (``app.mail``). The answer is the same whether or not the address has an account (no
account id, no two-factor status: nothing tells the inviter who exists); only the e-mail, read
by the owner of the address, differs:

- an existing account opens the link, signs in and accepts (``POST /invitations/accept``, with
  the account whose e-mail the invitation was sent to);
- a person without an account opens the link and chooses a password: the account is created with
  that address and joins the campaign (``POST /invitations/register``). This is how an organiser
  brings in a volunteer with no shell access to the server.

Admins may invite any role; organisers invite volunteers only. Links are
``{PORTE_PUBLIC_BASE_URL}/join/#invitation=<campaign id>.<secret>`` (the fragment never reaches a
server log); only the SHA-256 of the token is stored; a link works once and expires after
``PORTE_MEMBER_INVITATION_DAYS`` (7). A new invitation to the same address replaces the pending
one. A campaign sends at most ``PORTE_MEMBER_INVITATIONS_PER_HOUR`` invitations an hour.
Opening, accepting and registering are throttled per address like sign-in.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import ADMIN, VOLUNTEER
from app.config import Settings
from app.context import CampaignContext
from app.credentials import hash_password_async, token_hash
from app.db import Database, set_tenant
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from app.i18n import _, role_name
from app.mail import send_mail
from app.services.access import audit
from app.services.access.audit import write_event
from app.services.access.auth import MIN_PASSWORD, TokenPair, issue_tokens
from app.services.access.crypto import normalise_email
from app.services.access.throttle import forget_old_failures, release_attempt, reserve_attempt

_COLUMNS = (
    "id, email, role, invited_by, created_at, expires_at, accepted_at, "
    "CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END AS status"
)


def invalid_link() -> Unauthorized:
    """The one answer to a link that is unknown, used, expired or revoked."""
    return Unauthorized(
        _(
            "This invitation link is not valid any more (already used, expired or replaced by a "
            "newer one): ask the campaign for a new invitation."
        )
    )


def invitation_link(settings: Settings, token: str) -> str:
    """The URL sent by e-mail (the token sits in the fragment)."""
    return f"{settings.base_url}/join/#invitation={token}"


def _may_invite(ctx: CampaignContext, role: str) -> None:
    if ctx.role != ADMIN and role != VOLUNTEER:
        raise Forbidden(
            _("Organisers invite volunteers only; ask an admin of the campaign for other roles."),
            field="role",
        )


def _mail(
    *,
    exists: bool,
    campaign: str,
    role: str,
    email: str,
    inviter: str | None,
    link: str,
    expires_at: datetime,
) -> tuple[str, str]:
    """Subject and body of the invitation e-mail (what differs goes to the address's owner)."""
    subject = _("Invitation to join {campaign} on Porte-à-porte").format(campaign=campaign)
    who = inviter or _("An admin of the campaign")
    intro = _('{who} invites you to join the campaign "{campaign}" as {role}.').format(
        who=who, campaign=campaign, role=role_name(role)
    )
    if exists:
        how = _(
            "Open this link, sign in with your account ({email}) and accept the invitation:"
        ).format(email=email)
    else:
        how = _(
            "Open this link and choose a password: it creates your account ({email}) and adds "
            "you to the campaign:"
        ).format(email=email)
    end = _(
        "The link works once, until {expires} (UTC). If you did not expect this message, ignore "
        "it: nothing happens without you."
    ).format(expires=expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))
    return subject, f"{intro}\n\n{how}\n{link}\n\n{end}\n"


async def _check_invitations_this_hour(ctx: CampaignContext) -> None:
    """429 once the campaign sent its hourly number of invitations."""
    sent = (
        await ctx.session.execute(
            text(
                "SELECT count(*) FROM member_invitation WHERE campaign_id = :c "
                "AND created_at > now() - interval '1 hour'"
            ),
            {"c": ctx.campaign_id},
        )
    ).scalar_one()
    if sent >= ctx.settings.member_invitations_per_hour:
        raise TooManyRequests(
            _(
                "This campaign sent {n} invitations in the last hour, the most allowed "
                "(PORTE_MEMBER_INVITATIONS_PER_HOUR): try again later."
            ).format(n=sent),
            retry_after=600,
        )


async def invite_member(ctx: CampaignContext, *, email: str, role: str) -> dict[str, Any]:
    """Store an invitation and e-mail its link; the same answer whether the account exists."""
    _may_invite(ctx, role)
    email = normalise_email(email)
    settings = ctx.settings
    session = ctx.session
    await _check_invitations_this_hour(ctx)
    # A new invitation to the same address replaces the pending one (one live link per person).
    await session.execute(
        text(
            "UPDATE member_invitation SET revoked_at = now() WHERE campaign_id = :c AND email = :e "
            "AND accepted_at IS NULL AND revoked_at IS NULL"
        ),
        {"c": ctx.campaign_id, "e": email},
    )
    invitation_id = uuid.uuid4()
    token = f"{ctx.campaign_id}.{secrets.token_urlsafe(32)}"
    expires_at = datetime.now(UTC) + timedelta(days=settings.member_invitation_days)
    row = (
        await session.execute(
            text(
                "INSERT INTO member_invitation (campaign_id, id, email, role, token_hash, "
                "invited_by, invited_by_role, expires_at) VALUES (:c, :i, :e, :r, :h, :u, :ir, :x) "
                f"RETURNING {_COLUMNS}"
            ),
            {
                "c": ctx.campaign_id,
                "i": invitation_id,
                "e": email,
                "r": role,
                "h": token_hash(token),
                "u": ctx.user_id,
                "ir": ctx.role,
                "x": expires_at,
            },
        )
    ).one()
    # Whether the address has an account decides the e-mail's wording only: the answer below
    # is built from the invitation row alone.
    facts = (
        await session.execute(
            text(
                "SELECT (SELECT name FROM campaign WHERE id = :c) AS campaign, "
                "(SELECT email FROM app_user WHERE id = :u) AS inviter, "
                "EXISTS (SELECT 1 FROM app_user WHERE email = :e AND is_active) AS exists"
            ),
            {"c": ctx.campaign_id, "u": ctx.user_id, "e": email},
        )
    ).one()
    subject, body = _mail(
        exists=facts.exists,
        campaign=facts.campaign,
        role=role,
        email=email,
        inviter=facts.inviter,
        link=invitation_link(settings, token),
        expires_at=expires_at,
    )
    await send_mail(settings, to=email, subject=subject, body=body)
    await audit.record(
        ctx,
        action="access.member.invite",
        object=f"invitation:{invitation_id}",
        details={"role": role},
    )
    return dict(row._mapping)


async def list_invitations(ctx: CampaignContext, *, include_inactive: bool) -> list[dict]:
    """The campaign's invitations, newest first (organisers: the volunteer ones)."""
    where = (
        ""
        if include_inactive
        else (" AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()")
    )
    if ctx.role != ADMIN:
        where += " AND role = 'volunteer'"
    rows = await ctx.session.execute(
        text(
            f"SELECT {_COLUMNS} FROM member_invitation WHERE campaign_id = :c{where} "
            "ORDER BY created_at DESC"
        ),
        {"c": ctx.campaign_id},
    )
    return [dict(r._mapping) for r in rows]


async def revoke_invitation(ctx: CampaignContext, *, invitation_id: uuid.UUID) -> None:
    """Revoke a pending invitation: its link stops working."""
    row = (
        await ctx.session.execute(
            text("SELECT role FROM member_invitation WHERE campaign_id = :c AND id = :i"),
            {"c": ctx.campaign_id, "i": invitation_id},
        )
    ).first()
    if row is None or (ctx.role != ADMIN and row.role != VOLUNTEER):
        raise NotFound(_("No such invitation in this campaign."), field="invitation_id")
    await ctx.session.execute(
        text(
            "UPDATE member_invitation SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE campaign_id = :c AND id = :i AND accepted_at IS NULL"
        ),
        {"c": ctx.campaign_id, "i": invitation_id},
    )
    await audit.record(ctx, action="access.member.uninvite", object=f"invitation:{invitation_id}")


# ---------------------------------------------------------------- the link's holder
def _campaign_of(token: str) -> uuid.UUID | None:
    cid, _sep, secret = token.strip().partition(".")
    if not secret:
        return None
    try:
        return uuid.UUID(cid)
    except ValueError:
        return None


_PENDING = text(
    "SELECT i.id, i.campaign_id, i.email, i.role, i.expires_at, c.name AS campaign_name "
    "FROM member_invitation i JOIN campaign c ON c.id = i.campaign_id "
    "WHERE i.campaign_id = :c AND i.token_hash = :h AND i.accepted_at IS NULL "
    "AND i.revoked_at IS NULL AND i.expires_at > now()"
)


@asynccontextmanager
async def _pending(
    db: Database, settings: Settings, token: str, client: str | None, *, lock: bool
) -> AsyncIterator[tuple[AsyncSession, Any, int]]:
    """(transaction, invitation, attempt) for a live link, after counting the attempt against
    the address (429 when over the limit); the block runs in that transaction (the invitation
    locked when ``lock``). Any link that does not work gets the same 401, once the counted
    attempt is committed."""
    async with db.transaction() as session:
        attempt = await reserve_attempt(session, settings, key=None, client=client)
        cid = _campaign_of(token)
        row = None
        if cid is not None:
            await set_tenant(session, cid, None)
            sql = _PENDING.text + (" FOR UPDATE OF i" if lock else "")
            params = {"c": cid, "h": token_hash(token.strip())}
            row = (await session.execute(text(sql), params)).first()
        if row is not None:
            yield session, row, attempt
            return
    await forget_old_failures(db)
    raise invalid_link()


async def preview(
    db: Database, settings: Settings, *, token: str, client: str | None
) -> dict[str, Any]:
    """What the link offers (campaign, role, address, whether that address has an account)."""
    async with _pending(db, settings, token, client, lock=False) as (session, row, attempt):
        exists = (
            await session.execute(
                text("SELECT EXISTS (SELECT 1 FROM app_user WHERE email = :e AND is_active)"),
                {"e": row.email},
            )
        ).scalar_one()
    await release_attempt(db, attempt)
    return {
        "campaign_id": row.campaign_id,
        "campaign_name": row.campaign_name,
        "email": row.email,
        "role": row.role,
        "expires_at": row.expires_at,
        "account_exists": exists,
    }


async def _join(
    session: AsyncSession,
    row: Any,
    *,
    user_id: uuid.UUID,
    attempt: int,
    client: str | None,
    request_id: str | None,
    created_account: bool,
) -> None:
    """Add the account to the invitation's campaign and spend the link (tenant already set)."""
    await set_tenant(session, row.campaign_id, user_id)
    role = (
        await session.execute(
            text("SELECT role FROM membership WHERE campaign_id = :c AND user_id = :u"),
            {"c": row.campaign_id, "u": user_id},
        )
    ).scalar()
    if role is not None:
        raise Conflict(
            _(
                "You are already a member of this campaign (role {role}); an admin of the "
                "campaign can change your role."
            ).format(role=role)
        )
    await session.execute(
        text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r)"),
        {"c": row.campaign_id, "u": user_id, "r": row.role},
    )
    await session.execute(
        text(
            "UPDATE member_invitation SET accepted_at = now(), accepted_by = :u "
            "WHERE campaign_id = :c AND id = :i"
        ),
        {"c": row.campaign_id, "i": row.id, "u": user_id},
    )
    await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})
    await write_event(
        session,
        campaign_id=row.campaign_id,
        user_id=user_id,
        invite_id=None,
        role=row.role,
        action="access.member.join",
        object=f"invitation:{row.id}",
        request_id=request_id,
        client=client,
        details={"role": row.role, "new_account": created_account},
    )


async def accept(
    db: Database,
    settings: Settings,
    *,
    token: str,
    user_id: uuid.UUID,
    client: str | None,
    request_id: str | None,
) -> dict[str, Any]:
    """Accept with the signed-in account, which must be the one the invitation was sent to."""
    async with _pending(db, settings, token, client, lock=True) as (session, row, attempt):
        email = (
            await session.execute(text("SELECT email FROM app_user WHERE id = :u"), {"u": user_id})
        ).scalar_one()
        if email != row.email:
            raise Forbidden(
                _(
                    "This invitation was sent to another e-mail address: sign in with the "
                    "account of that address to accept it."
                )
            )
        await _join(
            session,
            row,
            user_id=user_id,
            attempt=attempt,
            client=client,
            request_id=request_id,
            created_account=False,
        )
    return {"campaign_id": row.campaign_id, "campaign_name": row.campaign_name, "role": row.role}


async def register(
    db: Database,
    settings: Settings,
    *,
    token: str,
    password: str,
    client: str | None,
    request_id: str | None,
    display_name: str | None = None,
) -> tuple[dict[str, Any], TokenPair]:
    """Create the invited address's account with this password, join, and sign in."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            _("Use at least {n} characters.").format(n=MIN_PASSWORD), field="password"
        )
    password_hash = await hash_password_async(password)  # before the transaction: it takes a while
    async with _pending(db, settings, token, client, lock=True) as (session, row, attempt):
        created = (
            await session.execute(
                text(
                    "INSERT INTO app_user (email, password_hash, display_name) "
                    "VALUES (:e, :h, :n) ON CONFLICT (email) DO NOTHING RETURNING id"
                ),
                {"e": row.email, "h": password_hash, "n": display_name},
            )
        ).scalar()
        if created is None:
            raise Conflict(
                _(
                    "An account already uses this address: sign in with it and accept the "
                    "invitation."
                ),
                extra={"account_exists": True},
            )
        await _join(
            session,
            row,
            user_id=created,
            attempt=attempt,
            client=client,
            request_id=request_id,
            created_account=True,
        )
        pair = await issue_tokens(session, settings, user_id=created, mfa=False)
    joined = {"campaign_id": row.campaign_id, "campaign_name": row.campaign_name, "role": row.role}
    return joined, pair
