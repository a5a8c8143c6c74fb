"""Volunteer invite links: create, list, revoke, QR code, and exchange for an invite session.

Link: ``{public_base_url}/m/#invite=<campaign_id>.<secret>`` (in the fragment, so the token never
reaches a server log). Only SHA-256(token) is stored. The secret is derived from the service's
secret key and the invite id (HMAC), so the QR code can be drawn again later without storing the
token: a database dump alone cannot rebuild any link. Rotating ``PORTE_SECRET_KEY`` keeps existing
links working (their hash is stored) but their QR codes can then no longer be drawn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import segno
from sqlalchemy import text

from app.authz import VOLUNTEER
from app.config import Settings
from app.context import CampaignContext
from app.credentials import invite_session_token, token_hash
from app.db import Database, set_tenant
from app.errors import Conflict, InvalidInput, Unauthorized
from app.i18n import N_, _
from app.services.access import audit
from app.services.access.audit import write_event
from app.services.access.throttle import forget_old_failures, reserve_attempt

DEFAULT_DAYS = 7
INVALID_LINK = N_("This invite link is not valid, has expired or was revoked: ask your organiser.")

_COLUMNS = (
    "id, campaign_id, assignment_id, label, created_by, created_at, expires_at, revoked_at, "
    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN 'expired' "
    "ELSE 'active' END AS status"
)


def invite_token(settings: Settings, campaign_id: uuid.UUID, invite_id: uuid.UUID) -> str:
    """The invite's token, ``<campaign_id>.<secret>``, derived from the secret key."""
    mac = hmac.new(
        settings.secret_key.encode(),
        f"porte-invite:{campaign_id}:{invite_id}".encode(),
        hashlib.sha256,
    ).digest()
    return f"{campaign_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def invite_link(settings: Settings, token: str) -> str:
    """The URL to open on a phone."""
    return f"{settings.base_url}/m/#invite={token}"


def _out(ctx: CampaignContext, row: dict, *, token: str | None = None) -> dict:
    out = {**row, "qr_url": f"/campaigns/{ctx.campaign_id}/invites/{row['id']}/qr.svg"}
    if token:
        out.update(token=token, link=invite_link(ctx.settings, token))
    return out


async def _assignment_end(ctx: CampaignContext, assignment_id: uuid.UUID) -> datetime | None:
    """When the assignment ends (the ``assignment`` table; None when open-ended)."""
    exists = (await ctx.session.execute(text("SELECT to_regclass('assignment')"))).scalar()
    if exists is None:
        raise InvalidInput(
            _(
                "Assignments are not available on this server yet: leave assignment_id out to "
                "invite to the whole campaign."
            ),
            field="assignment_id",
        )
    row = await ctx.one(
        "SELECT ends_at, ended_at FROM assignment WHERE campaign_id = :c AND id = :a",
        a=assignment_id,
        missing=_("No such assignment in this campaign."),
        field="assignment_id",
    )
    if row.ended_at is not None or (row.ends_at is not None and row.ends_at <= datetime.now(UTC)):
        raise InvalidInput(_("This assignment is already over."), field="assignment_id")
    return row.ends_at


async def create_invite(
    ctx: CampaignContext,
    *,
    assignment_id: uuid.UUID | None,
    label: str | None,
    expires_at: datetime | None,
) -> dict:
    """Create an invite; the link is in the answer (and again, audited, from ``/link``)."""
    now = datetime.now(UTC)
    cap = now + timedelta(days=ctx.settings.invite_max_days)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput(
                _("Give a time zone (e.g. 2026-12-01T20:00:00+01:00)."), field="expires_at"
            )
        if expires_at <= now:
            raise InvalidInput(_("The expiry must be in the future."), field="expires_at")
        if expires_at > cap + timedelta(minutes=1):
            raise InvalidInput(
                _("An invite lasts at most {invite_max_days} days.").format(
                    invite_max_days=ctx.settings.invite_max_days
                ),
                field="expires_at",
            )
    end = await _assignment_end(ctx, assignment_id) if assignment_id else None
    if expires_at is None:
        expires_at = end or now + timedelta(days=DEFAULT_DAYS)
    expires_at = min(expires_at, cap)
    invite_id = uuid.uuid4()
    token = invite_token(ctx.settings, ctx.campaign_id, invite_id)
    row = (
        await ctx.session.execute(
            text(
                "INSERT INTO invite (campaign_id, id, token_hash, assignment_id, label, "
                f"created_by, expires_at) VALUES (:c, :i, :h, :a, :l, :u, :e) RETURNING {_COLUMNS}"
            ),
            {
                "c": ctx.campaign_id,
                "i": invite_id,
                "h": token_hash(token),
                "a": assignment_id,
                "l": label,
                "u": ctx.user_id,
                "e": expires_at,
            },
        )
    ).one()
    await audit.record(ctx, action="access.invite.create", object=str(invite_id))
    return _out(ctx, dict(row._mapping), token=token)


async def list_invites(ctx: CampaignContext, *, include_inactive: bool = False) -> list[dict]:
    """The campaign's invites, newest first (without their links)."""
    where = "" if include_inactive else " AND revoked_at IS NULL AND expires_at > now()"
    rows = await ctx.session.execute(
        text(
            f"SELECT {_COLUMNS} FROM invite WHERE campaign_id = :c{where} ORDER BY created_at DESC"
        ),
        {"c": ctx.campaign_id},
    )
    return [_out(ctx, dict(r._mapping)) for r in rows]


async def _get(ctx: CampaignContext, invite_id: uuid.UUID) -> dict:
    row = await ctx.one(
        f"SELECT {_COLUMNS}, token_hash FROM invite WHERE campaign_id = :c AND id = :i",
        i=invite_id,
        missing=_("No such invite in this campaign."),
        field="invite_id",
    )
    return dict(row._mapping)


async def revoke_invite(ctx: CampaignContext, *, invite_id: uuid.UUID) -> None:
    """Revoke an invite: its sessions end at their next request."""
    await _get(ctx, invite_id)
    await ctx.session.execute(
        text(
            "UPDATE invite SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE campaign_id = :c AND id = :i"
        ),
        {"c": ctx.campaign_id, "i": invite_id},
    )
    await audit.record(ctx, action="access.invite.revoke", object=str(invite_id))


async def _active_token(ctx: CampaignContext, invite_id: uuid.UUID) -> tuple[dict, str]:
    """An active invite and its token, derived again from the secret key."""
    row = await _get(ctx, invite_id)
    if row["status"] != "active":
        said = {
            "revoked": _("This invite was revoked: create a new one."),
            "expired": _("This invite has expired: create a new one."),
        }
        raise Conflict(
            said.get(row["status"], _("This invite is no longer active: create a new one.")),
            field="invite_id",
        )
    token = invite_token(ctx.settings, ctx.campaign_id, invite_id)
    if not hmac.compare_digest(token_hash(token), row["token_hash"]):
        raise Conflict(
            _(
                "This invite was made with a previous secret key; its link cannot be given again. "
                "Create a new invite."
            ),
            field="invite_id",
        )
    return row, token


async def invite_link_again(ctx: CampaignContext, *, invite_id: uuid.UUID) -> dict:
    """An active invite's link and QR address, shown again (audited: the link opens the turf)."""
    row, token = await _active_token(ctx, invite_id)
    await audit.record(ctx, action="access.invite.link", object=str(invite_id))
    row.pop("token_hash", None)
    return _out(ctx, row, token=token)


async def invite_qr_svg(ctx: CampaignContext, *, invite_id: uuid.UUID) -> str:
    """The invite link as an SVG QR code (active invites only)."""
    _row, token = await _active_token(ctx, invite_id)
    await audit.record(ctx, action="access.invite.qr", object=str(invite_id))
    return segno.make(invite_link(ctx.settings, token), error="m").svg_inline(
        scale=6, border=4, title=_("Invite link")
    )


async def open_invite(
    db: Database, settings: Settings, *, token: str, client: str | None, request_id: str | None
) -> dict:
    """Exchange an invite token for a session limited to the invite (no account, no questions)."""
    cid_text, _dot, secret = token.strip().partition(".")
    try:
        campaign_id = uuid.UUID(cid_text)
    except ValueError:
        campaign_id = None
    async with db.transaction() as session:
        # Counted as a failure of this address (atomically with the limit check) unless it opens.
        attempt = await reserve_attempt(session, settings, key=None, client=client)
        row = None
        if campaign_id is not None and secret:
            await set_tenant(session, campaign_id, None)
            row = (
                await session.execute(
                    text(
                        "SELECT id, assignment_id, expires_at FROM invite WHERE campaign_id = :c "
                        "AND token_hash = :h AND revoked_at IS NULL AND expires_at > now()"
                    ),
                    {"c": campaign_id, "h": token_hash(token.strip())},
                )
            ).first()
        if row is not None:
            await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})
            await write_event(
                session,
                campaign_id=campaign_id,
                user_id=None,
                invite_id=row.id,
                role=VOLUNTEER,
                action="access.invite.open",
                request_id=request_id,
                client=client,
            )
    if row is None:
        await forget_old_failures(db)
        raise Unauthorized(_(INVALID_LINK))
    return {
        "access_token": invite_session_token(
            settings, invite_id=row.id, campaign_id=campaign_id, expires_at=row.expires_at
        ),
        "token_type": "bearer",
        "campaign_id": campaign_id,
        "assignment_id": row.assignment_id,
        "expires_at": row.expires_at,
    }
