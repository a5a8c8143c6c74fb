"""The public privacy notice of a campaign (GDPR art. 13/14), its QR code, and the admin's view
of the requests received on the public form (the form itself: ``privacy_form``).

Public routes: the campaign's tenant is set for the transaction so that RLS still applies.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import text

from app.context import CampaignContext
from app.db import set_tenant
from app.errors import InvalidInput, NotFound, TooManyRequests
from app.i18n import _, current
from app.schemas.people import PrivacyNoticeIn
from app.services.access import audit
from app.services.access.crypto import Cipher, aad, normalise_email
from app.services.people.gdpr import flag_door
from app.services.people.geocoder import geocode

if TYPE_CHECKING:
    from app.db import Database, Executor

_env = Environment(
    loader=FileSystemLoader(str(resources.files("app") / "templates")),
    autoescape=select_autoescape(["html"]),
)
_env.globals["_"] = _  # new texts of the pages are English in ``_()``, like the code's
_env.globals["lang"] = current


def day(d: date) -> str:
    """A date as the reader writes it: 01/03/2026 in French, 1 March 2026 in English."""
    if current() == "fr":
        return d.strftime("%d/%m/%Y")
    return f"{d.day} {d:%B %Y}"


_CAMPAIGN = text(
    "SELECT c.id, c.name, c.election_date, c.visit_retention_date, c.supporter_retention_months, "
    "c.k_threshold, p.controller, p.contact_email, p.postal_address, p.dpo_contact, "
    "p.notice_version FROM campaign c LEFT JOIN campaign_privacy p ON p.campaign_id = c.id "
    "WHERE c.id = :c"
)


async def _campaign(session: Any, campaign_id: uuid.UUID) -> Any:
    await set_tenant(session, campaign_id)
    row = (await session.execute(_CAMPAIGN, {"c": campaign_id})).first()
    if row is None:
        raise NotFound(_("No such campaign."))
    return row


def visit_retention(election: date, explicit: date | None) -> date:
    """The date after which visit outcomes are deleted (default: election + 1 month)."""
    if explicit:
        return explicit
    month, year = election.month + 1, election.year
    if month == 13:
        month, year = 1, year + 1
    for day in (election.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return election + timedelta(days=31)


async def notice_html(session: Executor, campaign_id: uuid.UUID, link_hours: int = 48) -> str:
    """The privacy notice page in the reader's language (``link_hours``: validity of the form's
    e-mailed links)."""
    c = await _campaign(session, campaign_id)
    return _env.get_template("privacy.html").render(
        campaign=c,
        controller=c.controller,
        contact_email=c.contact_email,
        postal_address=c.postal_address,
        dpo_contact=c.dpo_contact,
        notice_version=c.notice_version or "v1",
        k=c.k_threshold,
        visit_retention=day(visit_retention(c.election_date, c.visit_retention_date)),
        supporter_months=c.supporter_retention_months,
        link_hours=link_hours,
    )


async def qr_svg(session: Executor, campaign_id: uuid.UUID, base_url: str) -> str:
    """An SVG QR code pointing at the notice, for door leaflets."""
    await _campaign(session, campaign_id)
    buf = io.BytesIO()
    segno.make(f"{base_url.rstrip('/')}/privacy/{campaign_id}", error="m").save(
        buf, kind="svg", scale=4, border=2, xmldecl=False
    )
    return buf.getvalue().decode()


FORM_LIMIT = 10  # submissions per client address and minute, across every worker and server
_THROTTLE = text(
    """
    WITH recent AS (
        SELECT count(*) AS n FROM rate_event
        WHERE scope = 'privacy_form' AND client = :k
          AND at > CAST(:at AS timestamptz) - interval '60 seconds'
    ),
    added AS (
        INSERT INTO rate_event (scope, client, at)
        SELECT 'privacy_form', :k, CAST(:at AS timestamptz) FROM recent WHERE n < :limit
        RETURNING 1
    ),
    forgotten AS (
        DELETE FROM rate_event
        WHERE scope = 'privacy_form' AND client = :k
          AND at < CAST(:at AS timestamptz) - interval '1 hour'
    )
    SELECT n FROM recent
    """
)


async def throttle(db: Database, client: str | None, *, now: datetime | None = None) -> None:
    """Refuse a flood of form submissions from one address (the form needs no account).

    Counted in PostgreSQL (``rate_event``), in a transaction of its own committed at once, so
    that the limit holds across workers and servers and failed submissions count too.
    """
    at = now or datetime.now(UTC)
    async with db.transaction() as session:
        # One count at a time per address (the count below then sees the others' rows).
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('porte_form:' || :k))"),
            {"k": client or "-"},
        )
        n = (
            await session.execute(_THROTTLE, {"k": client or "-", "at": at, "limit": FORM_LIMIT})
        ).scalar_one()
    if n >= FORM_LIMIT:
        raise TooManyRequests(
            _("Too many requests from your connection: wait a minute and send the form again."),
            retry_after=60,
        )


async def set_notice(ctx: CampaignContext, body: PrivacyNoticeIn) -> dict[str, Any]:
    """Set the controller's identity and contacts shown on the notice (admin)."""
    ctrl = body.controller.strip()
    email = body.contact_email.strip()
    if not ctrl:
        raise InvalidInput(_("is required: the person or party responsible"), field="controller")
    email = normalise_email(email, field="contact_email")
    await ctx.session.execute(
        text(
            "INSERT INTO campaign_privacy (campaign_id, controller, contact_email, postal_address, "
            "dpo_contact, notice_version) VALUES (:c, :ctrl, :e, :pa, :dpo, :v) "
            "ON CONFLICT (campaign_id) DO UPDATE SET controller = excluded.controller, "
            "contact_email = excluded.contact_email, postal_address = excluded.postal_address, "
            "dpo_contact = excluded.dpo_contact, notice_version = excluded.notice_version, "
            "updated_at = now()"
        ),
        {
            "c": ctx.campaign_id,
            "ctrl": ctrl,
            "e": email,
            "pa": body.postal_address,
            "dpo": body.dpo_contact,
            "v": body.notice_version or "v1",
        },
    )
    return {
        "controller": ctrl,
        "contact_email": email,
        "notice_version": body.notice_version or "v1",
    }


_PENDING = text(
    "SELECT id, kind, received_at, status, outcome, key_id, address_enc, resolved_at, origin, "
    "address_id, confirmed_at FROM privacy_request "
    "WHERE campaign_id = :c AND (:all OR status = 'pending') "
    "ORDER BY received_at LIMIT :lim OFFSET :off"
)


async def list_requests(
    ctx: CampaignContext, *, include_done: bool = False, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Requests from the public form; pending objections with their address decrypted (admin)."""
    rows = (
        await ctx.session.execute(
            _PENDING, {"c": ctx.campaign_id, "all": include_done, "lim": limit, "off": offset}
        )
    ).all()
    cipher = Cipher.from_settings(ctx.settings) if any(r.address_enc for r in rows) else None
    items = []
    for r in rows:
        item = {
            "id": str(r.id),
            "kind": r.kind,
            "received_at": r.received_at,
            "status": r.status,
            "outcome": r.outcome,
            "resolved_at": r.resolved_at,
            "confirmed_at": r.confirmed_at,
            "origin": r.origin,
            "address_id": r.address_id,
            "address": None,
            "suggestion": None,
        }
        if r.address_enc is not None and cipher is not None:
            item["address"] = cipher.decrypt(
                r.address_enc, key_id=r.key_id, ad=aad(ctx.campaign_id, r.id, "address")
            )
        items.append(item)
    todo = [i for i in items if i["address"]]
    for item, g in zip(todo, await geocode(ctx.session, [i["address"] for i in todo]), strict=True):
        item["suggestion"] = g.as_dict()
    await audit.record(
        ctx, action="privacy_request.list", object="privacy_requests", rows=len(todo)
    )
    return {"items": items, "limit": limit, "offset": offset}


async def resolve_request(
    ctx: CampaignContext, request_id: uuid.UUID, address_id: int | None
) -> dict[str, Any]:
    """Close a pending objection: flag the chosen door (or none), then forget the address."""
    row = (
        await ctx.session.execute(
            text("SELECT status FROM privacy_request WHERE campaign_id = :c AND id = :i"),
            {"c": ctx.campaign_id, "i": request_id},
        )
    ).first()
    if row is None:
        raise NotFound(_("No such privacy request in this campaign."))
    if row.status != "pending":
        raise InvalidInput(_("this request is already handled"), field="request_id")
    if address_id is not None:
        door = (
            await ctx.session.execute(
                text("SELECT 1 FROM address WHERE id = :a"), {"a": address_id}
            )
        ).first()
        if door is None:
            raise InvalidInput(_("no such door"), field="address_id")
        await flag_door(ctx.session, ctx.campaign_id, address_id)
    outcome = "door_flagged_by_admin" if address_id is not None else "closed_no_door"
    await ctx.session.execute(
        text(
            "UPDATE privacy_request SET status = 'done', outcome = :o, address_enc = NULL, "
            "key_id = NULL, resolved_at = now(), resolved_by = :u, address_id = :a "
            "WHERE campaign_id = :c AND id = :i"
        ),
        {"o": outcome, "u": ctx.user_id, "c": ctx.campaign_id, "i": request_id, "a": address_id},
    )
    await audit.record(
        ctx, action="privacy_request.resolve", object=f"privacy_request:{request_id}", rows=1
    )
    return {"id": str(request_id), "status": "done", "outcome": outcome}
