"""The public privacy form: what anyone may ask without an account, and how it is kept from being
used against people (docs/privacy.md, "The public form").

- **Withdrawal, export, erasure** (by e-mail) take effect only when the person opens the
  single-use link sent to the e-mail address the campaign holds for them: anyone could type a
  list of addresses, only the owner of a mailbox can confirm. The form answers the same (status,
  page) whether the address is known or not; the message is sent after the answer (the mail
  server is never in the answer's path, so neither its delay nor its failure shows). Only the
  SHA-256 of the link's secret is stored; the link expires after ``privacy_link_hours`` (48 h)
  and works once. At most ``privacy_links_per_person_day`` links per person and day.
- **Door objections** ("do not knock", by address) take effect at once: an objection must work.
  Each is audited with the sender's coarse network (``audit.coarse_client``: /24 or /48, never
  the address), limited per network and per campaign and hour, flagged in the audit log beyond
  ``privacy_objection_alert_per_hour``, and can be reverted in bulk by the admin
  (``door_objections``).
"""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.credentials import token_hash
from app.errors import InvalidInput, ServiceUnavailable, TooManyRequests
from app.i18n import _, current
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher, aad, normalise_email
from app.services.people.gdpr import export_data, flag_door, withdraw_ids
from app.services.people.geocoder import geocode
from app.services.people.privacy import _campaign, _env

if TYPE_CHECKING:
    from app.db import Database, Executor

log = logging.getLogger("porte.privacy")

EMAIL_KINDS = ("withdrawal", "export", "erasure")
KINDS = ("objection", *EMAIL_KINDS)
CHANNEL = "privacy_form"


@dataclass(frozen=True)
class Outgoing:
    """A message to send once the answer has left (see ``deliver``)."""

    campaign_id: uuid.UUID
    request_id: uuid.UUID
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class FormAnswer:
    """The page to answer with, and at most one message to send after it."""

    html: str
    message: str
    mail: Outgoing | None = None


_REQUEST = text(
    "INSERT INTO privacy_request (campaign_id, id, kind, status, outcome, key_id, address_enc, "
    "origin, address_id, token_hash, expires_at, supporter_id) "
    "VALUES (:c, :id, :k, :s, :o, :kid, :a, :origin, :aid, :th, "
    "now() + make_interval(hours => CAST(:hours AS int)), :sid)"
)


def _request(campaign_id: uuid.UUID, rid: uuid.UUID, kind: str, status: str, outcome: str, **kw):
    return {
        "c": campaign_id,
        "id": rid,
        "k": kind,
        "s": status,
        "o": outcome,
        "kid": kw.get("kid"),
        "a": kw.get("a"),
        "origin": kw.get("origin"),
        "aid": kw.get("aid"),
        "th": kw.get("th"),
        "hours": kw.get("hours"),
        "sid": kw.get("sid"),
    }


async def public_request(
    session: Executor,
    settings: Settings,
    campaign_id: uuid.UUID,
    *,
    kind: str,
    address: str | None,
    email: str | None,
    client: str | None,
) -> FormAnswer:
    """Handle one submission of the public form (see the module's docstring)."""
    c = await _campaign(session, campaign_id)
    mail = None
    if kind == "objection":
        msg = await _objection(session, settings, campaign_id, address, client)
    elif kind in EMAIL_KINDS:
        msg, mail = await _by_email(session, settings, c, kind, email, client)
    else:
        raise InvalidInput(
            _("must be one of: {kinds}").format(kinds=", ".join(KINDS)), field="kind"
        )
    html = _env.get_template("privacy_done.html").render(campaign=c, message=msg)
    return FormAnswer(html, msg, mail)


# ---------------------------------------------------------------- door objections
_RECENT = text(
    """
    SELECT count(*) AS campaign,
           count(*) FILTER (WHERE origin IS NOT DISTINCT FROM CAST(:o AS text)) AS origin,
           min(received_at) AS oldest,
           min(received_at) FILTER (WHERE origin IS NOT DISTINCT FROM CAST(:o AS text))
               AS oldest_origin
    FROM privacy_request
    WHERE campaign_id = :c AND kind = 'objection' AND received_at > now() - interval '1 hour'
    """
)


def _retry_after(oldest: datetime | None) -> int:
    """Seconds until the oldest objection of the window leaves it (at least one)."""
    if oldest is None:
        return 3600
    left = (oldest + timedelta(hours=1) - datetime.now(UTC)).total_seconds()
    return max(1, math.ceil(left))


async def _objection_allowed(
    session: Any, settings: Settings, campaign_id: uuid.UUID, origin: str | None
) -> bool:
    """Refuse (429) an objection past the hourly limits of its network or of the campaign;
    whether it is past the campaign's alert level (the audit event is then flagged)."""
    # one objection at a time per campaign: the counts below cannot be raced past the limits
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('porte_objection'), hashtext(:c))"),
        {"c": str(campaign_id)},
    )
    recent = (await session.execute(_RECENT, {"c": campaign_id, "o": origin})).one()
    if recent.origin >= settings.privacy_objections_per_origin_hour:
        raise TooManyRequests(
            _(
                "Too many objections were sent from your network in the last hour: send the "
                "form again later, or write to the campaign (its address is on this page)."
            ),
            retry_after=_retry_after(recent.oldest_origin),
        )
    if recent.campaign >= settings.privacy_objections_per_campaign_hour:
        raise TooManyRequests(
            _(
                "This campaign received too many objections in the last hour: send the form "
                "again later, or write to the campaign (its address is on this page)."
            ),
            retry_after=_retry_after(recent.oldest),
        )
    return recent.campaign >= settings.privacy_objection_alert_per_hour


async def _objection(
    session: Any,
    settings: Settings,
    campaign_id: uuid.UUID,
    address: str | None,
    client: str | None,
) -> str:
    if not address or len(address.strip()) < 5 or len(address) > 300:
        raise InvalidInput(
            _("give the address of the door (number, street, postcode, commune)"), field="address"
        )
    origin = audit.coarse_client(client)
    alert = await _objection_allowed(session, settings, campaign_id, origin)
    rid = uuid.uuid4()
    g = (await geocode(session, [address]))[0]
    door = None
    if g.level == "housenumber" and g.address_id is not None:
        door = g.address_id
        await session.execute(
            _REQUEST,
            _request(
                campaign_id, rid, "objection", "done", "door_flagged", origin=origin, aid=door
            ),
        )
        if not await flag_door(session, campaign_id, door, request_id=rid):
            await session.execute(
                text(
                    "UPDATE privacy_request SET outcome = 'already_flagged' "
                    "WHERE campaign_id = :c AND id = :i"
                ),
                {"c": campaign_id, "i": rid},
            )
        msg = _(
            "Noted: this door will no longer be offered to the campaign's volunteers. No data "
            "identifying you was recorded."
        )
        outcome = "door_flagged"
    else:
        cipher = Cipher.from_settings(settings)
        enc = cipher.encrypt(address.strip(), ad=aad(campaign_id, rid, "address"))
        outcome = f"address_{g.level}"
        await session.execute(
            _REQUEST,
            _request(
                campaign_id,
                rid,
                "objection",
                "pending",
                outcome,
                kid=cipher.current,
                a=enc,
                origin=origin,
            ),
        )
        msg = _(
            "Your request is recorded. We could not place this address exactly: the campaign's "
            "team will handle it by hand within a month."
        )
    await _public_event(
        session,
        campaign_id,
        action="privacy.objection",
        object=f"privacy_request:{rid}",
        rows=1,
        client=origin,
        details={"outcome": outcome, "door": door},
        flag=alert,
    )
    return msg


async def _public_event(session: AsyncSession, campaign_id: uuid.UUID, **event: Any) -> None:
    """Audit what someone of the public did through the form (no account, no invite)."""
    await audit.write_event(
        session, campaign_id=campaign_id, user_id=None, invite_id=None, role="public", **event
    )


# ---------------------------------------------------------------- by e-mail, confirmed by link
_HELD = text(
    "SELECT id, key_id, email_enc FROM supporter WHERE campaign_id = :c AND email_hmac = :h "
    "AND status = 'active'"
)
_LINKS_TODAY = text(
    "SELECT count(*) FROM privacy_request WHERE campaign_id = :c "
    "AND supporter_id = CAST(:s AS uuid) "
    "AND received_at > now() - interval '1 day'"
)


def _what(kind: str) -> str:
    return {
        "withdrawal": _("withdraw your consent and erase your contact details"),
        "export": _("get a copy of everything the campaign holds about you"),
        "erasure": _("erase everything the campaign holds about you"),
    }[kind]


def _confirmation_mail(settings: Settings, c: Any, kind: str, token: str) -> tuple[str, str]:
    """The subject and body of the mail with the confirmation link, in the request's language."""
    campaign_id, hours = c.id, settings.privacy_link_hours
    # the page opens in the language of the request (the mail is written in it too)
    page = f"{settings.base_url}/privacy/{campaign_id}/confirm" + (
        "" if current() == "fr" else f"?lang={current()}"
    )
    link = f"{page}#code={token}"
    subject = _("Confirm your request to the campaign \u201c{name}\u201d").format(name=c.name)
    body = _(
        "Hello,\n\n"
        "Someone (you, we hope) asked the campaign \u201c{name}\u201d, on its privacy page, to "
        "{what}.\n\n"
        "If it was you, open this link within {hours} hours and confirm:\n\n{link}\n\n"
        "(or open {page} and paste this code: {code})\n\n"
        "If it was not you, ignore this message: nothing will change. The link works once.\n"
    ).format(
        name=c.name,
        what=_what(kind),
        hours=hours,
        link=link,
        page=page,
        code=token,
    )
    return subject, body


async def _by_email(
    session: Any, settings: Settings, c: Any, kind: str, email: str | None, client: str | None
) -> tuple[str, Outgoing | None]:
    """Record the request and, when the address is held, prepare the link (sent after the
    answer). Same statements and same answer whether the address is known or not."""
    if not email:
        raise InvalidInput(_("give the e-mail address you gave the campaign"), field="email")
    norm = normalise_email(email)
    if not settings.smtp_host:  # the same for everyone: nothing can be confirmed without mail
        raise ServiceUnavailable(
            _(
                "This form cannot send the confirmation link (no mail server is configured): "
                "write to the campaign instead (its address is on this page)."
            ),
            retry_after=3600,
        )
    campaign_id = c.id
    h = Hasher.from_settings(settings).digest(campaign_id, "email", norm)
    held = (await session.execute(_HELD, {"c": campaign_id, "h": h})).first()
    token = secrets.token_urlsafe(32)
    hours = settings.privacy_link_hours
    rid = uuid.uuid4()
    origin = audit.coarse_client(client)
    msg = _(
        "If this e-mail address is in the campaign's file, we have just sent it a link. Your "
        "request ({what}) takes effect only when you open that link and confirm, within {hours} "
        "hours. If no message arrives, check the address you typed (and your spam folder), or "
        "write to the campaign."
    ).format(what=_what(kind), hours=hours)
    # run for an unknown address too (it counts nothing): the same statements either way
    sent_today = (
        await session.execute(_LINKS_TODAY, {"c": campaign_id, "s": held.id if held else None})
    ).scalar_one()
    if held is None or sent_today >= settings.privacy_links_per_person_day:
        outcome = "no_match" if held is None else "too_many_links"
        await session.execute(
            _REQUEST,
            _request(campaign_id, rid, kind, "done", outcome, origin=origin, sid=None),
        )
        return msg, None
    await session.execute(
        _REQUEST,
        _request(
            campaign_id,
            rid,
            kind,
            "unconfirmed",
            "link_sent",
            origin=origin,
            th=token_hash(token),
            hours=hours,
            sid=held.id,
        ),
    )
    to = norm
    if held.email_enc is not None:
        cipher = Cipher.from_settings(settings)
        to = cipher.decrypt(
            held.email_enc, key_id=held.key_id, ad=aad(campaign_id, held.id, "email")
        )
    subject, body = _confirmation_mail(settings, c, kind, token)
    return msg, Outgoing(campaign_id, rid, to, subject, body)


async def deliver(db: Database, settings: Settings, mail: Outgoing) -> None:
    """Send a confirmation link (after the answer); when the mail server refuses or hangs, say so
    on the request (the admin sees ``mail_failed`` in the list) and in the log, never who."""
    from app.db import set_tenant
    from app.mail import send_mail

    try:
        await send_mail(settings, to=mail.to, subject=mail.subject, body=mail.body)
        return
    except ServiceUnavailable:
        log.warning("privacy confirmation link not sent (request %s)", mail.request_id)
    except Exception:  # noqa: BLE001 - a background task: log, never raise into the server
        log.exception("privacy confirmation link not sent (request %s)", mail.request_id)
    try:
        async with db.transaction() as session:
            await set_tenant(session, mail.campaign_id)
            await session.execute(
                text(
                    "UPDATE privacy_request SET outcome = 'mail_failed' "
                    "WHERE campaign_id = :c AND id = :i AND status = 'unconfirmed'"
                ),
                {"c": mail.campaign_id, "i": mail.request_id},
            )
    except Exception:  # noqa: BLE001
        log.exception("could not record that request %s got no mail", mail.request_id)


# ---------------------------------------------------------------- the link
_PENDING = text(
    "SELECT id, kind, supporter_id, expires_at, origin FROM privacy_request "
    "WHERE campaign_id = :c AND token_hash = :h AND status = 'unconfirmed' FOR UPDATE"
)
_CLOSE = text(
    "UPDATE privacy_request SET status = 'done', outcome = :o, token_hash = NULL, "
    "supporter_id = NULL, confirmed_at = CASE WHEN :confirmed THEN now() END "
    "WHERE campaign_id = :c AND id = :i"
)


@dataclass(frozen=True)
class Confirmed:
    """What a link did: a page to show (``valid`` False: unknown, used or expired code, nothing
    changed), or the export to download."""

    valid: bool
    html: str | None = None
    export: dict[str, Any] | None = None


async def confirm_page(session: Executor, settings: Settings, campaign_id: uuid.UUID) -> str:
    """The page the link opens (404 when there is no such campaign): the person confirms with a
    button, so a link checker or a mailbox's preview that opens the link changes nothing."""
    c = await _campaign(session, campaign_id)
    return _env.get_template("privacy_confirm.html").render(
        campaign=c, hours=settings.privacy_link_hours
    )


def _page(c: Any, title: str, message: str) -> str:
    return _env.get_template("privacy_done.html").render(campaign=c, message=message, title=title)


async def confirm(
    session: Executor, settings: Settings, campaign_id: uuid.UUID, code: str, client: str | None
) -> Confirmed:
    """Carry out the request of a valid code, once (see ``Confirmed``)."""
    c = await _campaign(session, campaign_id)
    code = (code or "").strip()
    req = None
    if code and len(code) <= 200:
        req = (await session.execute(_PENDING, {"c": campaign_id, "h": token_hash(code)})).first()
    if req is not None and req.expires_at <= datetime.now(UTC):
        await session.execute(
            _CLOSE, {"o": "expired", "confirmed": False, "c": campaign_id, "i": req.id}
        )
        req = None
    if req is None:
        msg = _(
            "This link is not valid any more: it was already used, it is more than {hours} "
            "hours old, or the code was not copied whole. Nothing was changed. Send the form "
            "again to get a new link."
        ).format(hours=settings.privacy_link_hours)
        return Confirmed(False, html=_page(c, _("Link not valid"), msg))
    sid = req.supporter_id
    data = None
    if req.kind == "withdrawal":
        done = await withdraw_ids(session, campaign_id, [sid], CHANNEL)
        outcome, action = ("withdrawn" if done else "nothing_to_do"), "gdpr.withdraw"
        msg = _(
            "Done: your consent is withdrawn and your contact details are erased. The campaign "
            "keeps only the proof of the withdrawal, without your identity."
        )
    elif req.kind == "erasure":
        res = await session.execute(
            text("DELETE FROM supporter WHERE campaign_id = :c AND id = :i"),
            {"c": campaign_id, "i": sid},
        )
        outcome, action = ("erased" if res.rowcount else "nothing_to_do"), "gdpr.erase"
        msg = _("Done: everything the campaign held about you is erased.")
    else:
        data = await export_data(session, settings, campaign_id, sid)
        outcome, action = ("exported" if data else "nothing_to_do"), "gdpr.export"
        msg = _("The campaign holds nothing about you any more.")
    await session.execute(_CLOSE, {"o": outcome, "confirmed": True, "c": campaign_id, "i": req.id})
    if outcome != "nothing_to_do":
        await _public_event(
            session,
            campaign_id,
            action=action,
            object=f"supporter:{sid}",
            rows=1,
            client=audit.coarse_client(client),
            details={"channel": CHANNEL, "confirmed_by": "e-mail link", "request": str(req.id)},
        )
    if data is not None:
        return Confirmed(True, export=data)
    return Confirmed(True, html=_page(c, _("Request confirmed"), msg))
