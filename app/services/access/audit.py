"""Audit log of every view or export of precise locations or personal data (append-only).

The service's role may only INSERT and SELECT ``audit_event``: it can neither change nor delete
history. ``purge_audit`` (run as the schema owner) deletes events older than the retention period.

Action names are ``<object>.<verb>`` (``doors.view``, ``supporters.export``...). Every action
counts towards the burst detector except the administrative ``access.*`` ones (member changes,
invites, reading the audit log itself): an actor with more than ``settings.audit_burst_threshold``
counted events in one hour gets each further event ``flagged``, shown to the campaign's admins.
The public privacy form has no actor: its door objections are recorded with role ``public`` and
the sender's coarse network (``coarse_client``), and flagged once the campaign received more than
``settings.privacy_objection_alert_per_hour`` of them in an hour.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.csvsafe import rows_to_csv
from app.errors import InvalidInput
from app.i18n import _

if TYPE_CHECKING:
    from app.context import CampaignContext

log = logging.getLogger("porte.audit")
ADMIN_PREFIX = "access."

_INSERT = text(
    """
    INSERT INTO audit_event (campaign_id, actor_user_id, actor_invite_id, role, action, object,
                             row_count, request_id, client, details, flagged)
    VALUES (:c, :u, :i, :r, :a, :o, :n, :rid, :cl, CAST(:d AS jsonb),
            CAST(:force AS boolean) OR CAST(:a AS text) NOT LIKE 'access.%' AND (
              SELECT count(*) FROM (
                SELECT 1 FROM audit_event
                WHERE campaign_id = :c AND at > now() - interval '1 hour'
                  AND action NOT LIKE 'access.%'
                  AND ((CAST(:u AS uuid) IS NOT NULL AND actor_user_id = :u)
                       OR (CAST(:i AS uuid) IS NOT NULL AND actor_invite_id = :i))
                LIMIT :t) recent
            ) >= :t)
    RETURNING flagged
    """
)


_NOT_TOKEN = {
    extra: re.compile(rf"[^-A-Za-z0-9._{re.escape(extra)}]") for extra in ("", ":%", ":%/")
}


def safe_token(value: str | None, limit: int, *, extra: str = "") -> str | None:
    """``value`` reduced to an id's characters (letters, digits, '.', '_', '-' and ``extra``),
    at most ``limit`` long; None when nothing is left. The database CHECKs the same
    (migration 0017): a request id or an address never carries a sentence into the audit log."""
    if value is None:
        return None
    kept = _NOT_TOKEN[extra].sub("", value)[:limit]
    return kept or None


async def write_event(
    session: AsyncSession,
    *,
    campaign_id: uuid.UUID,
    user_id: uuid.UUID | None,
    invite_id: uuid.UUID | None,
    role: str | None,
    action: str,
    object: str | None = None,
    rows: int | None = None,
    request_id: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
    burst_threshold: int = 200,
    flag: bool = False,
) -> bool:
    """Insert one event (the tenant must be set); return whether it was flagged as a burst.

    ``flag`` flags it whatever the hourly count (e.g. a minute of door tiles above
    ``settings.audit_tile_burst``, or a door objection of the public form beyond the campaign's
    hourly alert threshold: the form has no actor to count). The request id and client address
    are kept only as tokens (see ``safe_token``; a client may be a network such as
    ``203.0.113.0/24``): they come from the client and must not carry text.
    """
    flagged = (
        await session.execute(
            _INSERT,
            {
                "c": campaign_id,
                "u": user_id,
                "i": invite_id,
                "r": role,
                "a": action,
                "o": object,
                "n": rows,
                "rid": safe_token(request_id, 64),
                "cl": safe_token(client, 100, extra=":%/"),
                "d": json.dumps(details, default=str) if details else None,
                "t": burst_threshold,
                "force": flag,
            },
        )
    ).scalar_one()
    if flagged:
        log.warning(
            "audit burst: %s of campaign %s did %s (%s)",
            user_id or (f"invite {invite_id}" if invite_id else f"the public form ({client})"),
            campaign_id,
            action,
            "over its alert threshold"
            if flag
            else f"more than {burst_threshold} views/exports in an hour",
        )
    return flagged


async def record(
    ctx: CampaignContext,
    *,
    action: str,
    object: str | None = None,
    rows: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that precise locations or personal data were seen or exported (the request's
    transaction; on the primary when the request reads from the replica)."""
    await write_event(
        await ctx.write_session(),
        campaign_id=ctx.campaign_id,
        user_id=ctx.principal.user_id,
        invite_id=ctx.principal.invite_id,
        role=ctx.role,
        action=action,
        object=object,
        rows=rows,
        request_id=ctx.request_id,
        client=ctx.client,
        details=details,
        burst_threshold=ctx.settings.audit_burst_threshold,
    )


def coarse_client(address: str | None) -> str | None:
    """The network a client address belongs to, never the address: its /24 (IPv4) or /48 (IPv6).

    Used for requests nobody signs in for (the public privacy form). The network is enough to see
    that many requests came from one place and to undo them together; the full address, which an
    access provider can tie to one subscriber, would say who asked about which door."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


async def flagged_count(session: AsyncSession, campaign_id: uuid.UUID, days: int = 30) -> int:
    """How many events were flagged as bursts in the last ``days`` days."""
    return (
        await session.execute(
            text(
                "SELECT count(*) FROM audit_event WHERE campaign_id = :c AND flagged "
                "AND at > now() - make_interval(days => :d)"
            ),
            {"c": campaign_id, "d": days},
        )
    ).scalar_one()


COLUMNS = (
    "id",
    "at",
    "actor_user_id",
    "actor_email",
    "actor_invite_id",
    "role",
    "action",
    "object",
    "row_count",
    "request_id",
    "client",
    "flagged",
)


async def list_events(
    ctx: CampaignContext,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    flagged: bool | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Events of the campaign, newest first, filtered (actor: account id, invite id or e-mail;
    action: exact name, or a prefix ending with '.' or '*')."""
    where = ["e.campaign_id = :c"]
    params: dict[str, Any] = {"c": ctx.campaign_id, "limit": limit}
    if actor:
        try:
            params["actor"] = uuid.UUID(actor)
            where.append("(e.actor_user_id = :actor OR e.actor_invite_id = :actor)")
        except ValueError:
            params["actor"] = actor.strip().lower()
            where.append("u.email = :actor")
    if action:
        if action.endswith("*") or action.endswith("."):
            params["action"] = action.rstrip("*").replace("%", r"\%").replace("_", r"\_") + "%"
            where.append("e.action LIKE :action")
        else:
            params["action"] = action
            where.append("e.action = :action")
    if since and until and since > until:
        raise InvalidInput(_("'since' is after 'until'."), field="since")
    if since:
        params["since"] = since
        where.append("e.at >= :since")
    if until:
        params["until"] = until
        where.append("e.at <= :until")
    if flagged is not None:
        params["flagged"] = flagged
        where.append("e.flagged = :flagged")
    rows = await ctx.session.execute(
        text(
            "SELECT e.id, e.at, e.actor_user_id, u.email AS actor_email, e.actor_invite_id, "
            "e.role, e.action, e.object, e.row_count, e.request_id, e.client, e.flagged "
            "FROM audit_event e LEFT JOIN app_user u ON u.id = e.actor_user_id "
            f"WHERE {' AND '.join(where)} ORDER BY e.at DESC, e.id DESC LIMIT :limit"
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


def to_csv(events: list[dict[str, Any]]) -> str:
    """The events as CSV (one header line); cells that a spreadsheet would run are neutralised
    (``app.csvsafe``)."""
    return rows_to_csv(COLUMNS, ([e.get(col) for col in COLUMNS] for e in events))


# ---------------------------------------------------------------- retention
async def purge_audit(engine: AsyncEngine, *, days: int = 365) -> int:
    """Delete audit events older than ``days`` on the owner's ``engine`` (``app.db.owner_engine``:
    the owner bypasses row-level security, so every campaign's old events go)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text("DELETE FROM audit_event WHERE at < now() - make_interval(days => :d)"),
            {"d": days},
        )
    return result.rowcount
