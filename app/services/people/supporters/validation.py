"""A consented supporter before it is stored: its fields and their limits, its purposes,
channels and lawful bases, and the checks that turn a raw record (an API body, a CSV row, a CRM
row) into a ``NewSupporter``. No database, no encryption: ``core.py`` stores what passes here.
Errors name the field (with the row's prefix), never the value.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.errors import InvalidInput
from app.frenchdata import CHANNEL_LABELS, PURPOSE_LABELS, parse_datetime, to_code
from app.i18n import _
from app.services.access.crypto import normalise_email, normalise_phone
from app.services.people.geocoder import GeocodeResult, ParsedAddress

PURPOSES = ("contact", "mapping", "volunteering", "newsletter")
CHANNELS = ("door", "form", "event", "membership")
PERSONAL = ("name", "email", "phone", "address", "notes")
PLACED_LEVELS = ("housenumber", "interpolated", "manual")  # these count in aggregates
MAX_LEN = {"name": 200, "email": 254, "phone": 40, "address": 300, "notes": 2000}


BASES = ("consent", "member", "former_member", "regular_contact")
# An import's consent columns -> the fields of a consent record.
CONSENT_FIELDS_OF_ROW = {
    "consent_given_at": "given_at",
    "consent_purposes": "purposes",
    "consent_channel": "channel",
    "consent_wording_version": "wording_version",
    "consent_notice_version": "notice_version",
    "consent_collected_by": "collected_by",
    "consent_given_by_subject": "given_by_subject",
}


@dataclass
class Consent:
    """The legal basis of one or several purposes: a consent given by the person (as recorded
    since the start), or membership / regular contact with the party (GDPR art. 9-2-d), then
    with the ``evidence`` the file gave (``given_at`` is then the date of that evidence)."""

    purposes: list[str]
    given_at: datetime
    channel: str | None
    wording_version: str | None
    notice_version: str | None
    collected_by: str
    given_by_subject: bool = True
    basis: str = "consent"
    evidence: str | None = None
    evidence_at: datetime | None = None
    source: str | None = None


@dataclass
class NewSupporter:
    """A validated supporter, ready to be encrypted and stored."""

    consent: Consent
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    notes: str | None = None
    last_contact_at: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    email_hmac: bytes | None = None
    phone_hmac: bytes | None = None
    geo: GeocodeResult | None = None
    # more bases for other purposes (imports from a CRM: consent for some, membership for others)
    more: list[Consent] = field(default_factory=list)
    parsed: ParsedAddress | None = None  # the address as the geocoder should read it
    no_geocode: str | None = None  # why the address is not geocoded (e.g. not in France)
    tags: list[str] = field(default_factory=list)

    @property
    def bases(self) -> list[Consent]:
        """Every basis of this supporter, one per group of purposes."""
        return [self.consent, *self.more]

    @property
    def purposes(self) -> list[str]:
        """Every purpose this supporter may be processed for."""
        return sorted({p for c in self.bases for p in c.purposes})


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    v = str(value).strip()
    return v or None


def validate(raw: dict[str, Any], *, prefix: str = "") -> NewSupporter:
    """Check and normalise one supporter (fields + ``consent``); InvalidInput names the field."""
    c = raw.get("consent")
    if not isinstance(c, dict):
        raise InvalidInput(
            _(
                "a supporter cannot be stored without the consent given by the person "
                "(when, purposes, channel, wording and notice versions, who collected it)"
            ),
            field=f"{prefix}consent",
        )
    consent = validate_consent(c, prefix=f"{prefix}consent.")
    return validate_person(raw, consent, prefix=prefix)


def validate_person(raw: dict[str, Any], consent: Consent, *, prefix: str = "") -> NewSupporter:
    """Check and normalise the personal fields of a supporter whose basis is already checked."""
    vals = {k: _clean(raw.get(k)) for k in PERSONAL}
    for k, v in vals.items():
        if v is not None and len(v) > MAX_LEN[k]:
            raise InvalidInput(
                _("is longer than {n} characters").format(n=MAX_LEN[k]), field=f"{prefix}{k}"
            )
    if vals["email"] is not None:
        vals["email"] = normalise_email(vals["email"], field=f"{prefix}email")
    if vals["phone"] is not None:
        vals["phone"] = normalise_phone(vals["phone"], field=f"{prefix}phone")
    if not (vals["name"] or vals["email"] or vals["phone"]):
        raise InvalidInput(
            _("give at least a name, an e-mail or a phone number"), field=f"{prefix}name"
        )
    lc = raw.get("last_contact_at")
    return NewSupporter(
        consent=consent,
        **vals,
        last_contact_at=_datetime(lc, f"{prefix}last_contact_at") if lc else None,
    )


def _datetime(value: Any, fieldname: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = parse_datetime(str(value))
        except ValueError as exc:
            raise InvalidInput(
                _(
                    "is not a date (expected dd/mm/yyyy, e.g. 01/03/2026 or 01/03/2026 18:30, "
                    "or ISO 8601, e.g. 2026-03-01)"
                ),
                field=fieldname,
            ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if dt > datetime.now(UTC):
        raise InvalidInput(_("is in the future"), field=fieldname)
    return dt


def validate_consent(c: dict[str, Any], *, prefix: str = "consent.") -> Consent:
    """Check one consent record; every element is required (GDPR art. 7: provable consent)."""
    given_by = c.get("given_by_subject")
    if isinstance(given_by, str):
        given_by = given_by.strip().lower() in ("1", "true", "yes", "oui", "y", "o")
    if given_by is not True:
        raise InvalidInput(
            _(
                "consent must be given by the person themself (given_by_subject = true); a "
                "supporter whose consent was not given by them cannot be stored"
            ),
            field=f"{prefix}given_by_subject",
        )
    purposes = c.get("purposes")
    if isinstance(purposes, str):
        purposes = [p.strip() for p in re.split(r"[,;|]", purposes) if p.strip()]
    if isinstance(purposes, list):
        purposes = [to_code(str(p), PURPOSE_LABELS) or p for p in purposes]
    if not purposes:
        raise InvalidInput(
            _("list at least one purpose the person agreed to ({purposes})").format(
                purposes=", ".join(PURPOSES)
            ),
            field=f"{prefix}purposes",
        )
    bad = [p for p in purposes if p not in PURPOSES]
    if bad:
        raise InvalidInput(
            _("unknown purpose {purpose!r}; allowed: {purposes}").format(
                purpose=bad[0], purposes=", ".join(PURPOSES)
            ),
            field=f"{prefix}purposes",
        )
    channel = _clean(c.get("channel"))
    channel = (to_code(channel, CHANNEL_LABELS) or channel) if channel else channel
    if channel not in CHANNELS:
        raise InvalidInput(
            _("must be one of {channels} (where the consent was collected)").format(
                channels=", ".join(CHANNELS)
            ),
            field=f"{prefix}channel",
        )
    out = {}
    for k in ("wording_version", "notice_version", "collected_by"):
        v = _clean(c.get(k))
        if not v:
            raise InvalidInput(_("is required to prove the consent"), field=f"{prefix}{k}")
        if len(v) > (200 if k == "collected_by" else 100):
            raise InvalidInput(_("is too long"), field=f"{prefix}{k}")
        out[k] = v
    if not c.get("given_at"):
        raise InvalidInput(
            _("is required: when the person gave consent"), field=f"{prefix}given_at"
        )
    given_at = _datetime(c["given_at"], f"{prefix}given_at")
    return Consent(sorted(set(purposes)), given_at, channel, **out)
