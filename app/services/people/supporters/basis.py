"""The lawful basis of a row of a CRM export: consent, or membership / regular contact, or none.

A row comes across only under a recorded basis, per purpose:

- ``consent``: the file gives the date the person consented (a ``consent_given_at`` column, named
  by the export or by ``--mapping``), with the purposes, wording, notice, channel and collector
  (from the row or the mapping's file-wide defaults), exactly as for any other import;
- ``member``: a current membership (a status such as Current / New / Grace, a membership that has
  not expired, or a membership flag), with its start date as evidence when the file has one;
- ``former_member``: a membership that ended within the campaign's retention period (36 months
  by default), its end date as evidence;
- ``regular_contact``: at least two dated positive steps (donations, events attended), the last
  one within the retention period. CNIL names "abonnés, sympathisants, donateurs fréquents"; a
  single donation or an opt-in flag without a date is not regular contact.

The three last ones are GDPR art. 9-2-d: a political body may process, without consent, data
about its members, former members and people in regular contact with it, for its legitimate
activities, as long as the data do not leave it without consent (CNIL, "Les fichiers de
communication politique"). They allow ``contact``, ``mapping`` and ``newsletter`` (and
``volunteering`` for people the file marks as volunteers); a consent allows what it says.

Opt-outs in the file always win: deceased, deleted or non-person contacts are refused; "do not
contact" removes every purpose but ``mapping``; an e-mail opt-out (unsubscribed, do not e-mail,
no bulk e-mails) removes ``newsletter``; "do not phone" leaves the phone number out. A row left
with no purpose is refused. Nothing here stores anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import InvalidInput
from app.frenchdata import _key
from app.i18n import _
from app.services.access.crypto import normalise_email
from app.services.people.geocoder import parse_address
from app.services.people.supporters import sources
from app.services.people.supporters.crm_cells import (
    ACTIVE,
    ENDED,
    PENDING,
    PERSON_TYPES,
    crm_count,
    crm_date,
    crm_phone,
    flag,
    is_france,
    street_line,
)
from app.services.people.supporters.validation import (
    CONSENT_FIELDS_OF_ROW,
    Consent,
    NewSupporter,
    validate_consent,
    validate_person,
)

PARTY_PURPOSES = ("contact", "mapping", "newsletter")
# Refusal codes (the report counts rows by code; the text says why).
DECEASED, DELETED, NOT_PERSON, NO_BASIS, OPTED_OUT, TOO_OLD = (
    "deceased",
    "deleted",
    "not_a_person",
    "no_basis",
    "opted_out",
    "too_old",
)
# Effects counted in the report (the row comes, without something).
EMAIL_OPT_OUT, CONTACT_OPT_OUT, PHONE_OPT_OUT, PHONE_INVALID, EMAIL_INVALID, NOT_FRANCE = (
    "email_opt_out",
    "contact_opt_out",
    "phone_opt_out",
    "phone_invalid",
    "email_invalid",
    "not_france",
)


def effect_text(code: str) -> str:
    """What happened to rows with that effect (translated now)."""
    return {
        EMAIL_OPT_OUT: _("imported without 'newsletter': the person opted out of e-mails"),
        CONTACT_OPT_OUT: _(
            "imported for 'mapping' only: the person asked not to be contacted (do not contact)"
        ),
        PHONE_OPT_OUT: _("imported without the phone number: the person asked not to be phoned"),
        PHONE_INVALID: _("imported without the phone number: not a valid phone number"),
        EMAIL_INVALID: _("imported without the e-mail: not a valid e-mail address"),
        NOT_FRANCE: _(
            "imported but not placed on the map: the address is outside France, which the local "
            "geocoder does not cover"
        ),
    }[code]


@dataclass
class Outcome:
    """One row: a supporter to store, or a refusal (code, field, reason), and what was left out."""

    supporter: NewSupporter | None = None
    refused: tuple[str, str, str] | None = None
    effects: list[str] = field(default_factory=list)
    tags_dropped: list[str] = field(default_factory=list)
    main_basis: str | None = None


@dataclass
class RowReader:
    """Reads the rows of one CRM export under one column plan."""

    plan: sources.ColumnPlan
    tags_allowed: frozenset[str]
    defaults: dict[str, Any]
    retention_months: int
    file_name: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.system = sources.REGISTRY[self.plan.system]
        self.system_name = sources.SYSTEM_NAMES[self.plan.system]
        self.horizon = self.now - timedelta(days=round(self.retention_months * 30.44))

    def _v(self, row: dict[str, str], fld: str) -> str | None:
        return sources.first_value(row, self.plan, fld)

    def _col(self, fld: str) -> str:
        cols = self.plan.sources.get(fld)
        return cols[0] if cols else fld

    def _date(self, row: dict[str, str], fld: str) -> datetime | None:
        return crm_date(self._v(row, fld), self._col(fld))

    def _evidence(self, basis: str, text: str, at: datetime | None, purposes: list[str]):
        return Consent(
            purposes=purposes,
            given_at=min(at or self.now, self.now),
            channel=None,
            wording_version=None,
            notice_version=None,
            collected_by=_("{system} export ({file})").format(
                system=self.system_name, file=self.file_name
            )[:200],
            given_by_subject=False,
            basis=basis,
            evidence=_("{system}: {text}").format(system=self.system_name, text=text)[:300],
            evidence_at=at,
            source=self.plan.system,
        )

    def read(self, row: dict[str, str]) -> Outcome:
        """Decide the row; InvalidInput (a rejected row) when a cell it needs is malformed."""
        out = Outcome()
        v = self._v
        if flag(v(row, "deleted")):
            return self._refuse(out, DELETED, "deleted")
        ctype = v(row, "contact_type")
        if ctype and _key(ctype) not in PERSON_TYPES:
            return self._refuse(out, NOT_PERSON, "contact_type")
        if flag(v(row, "deceased")) or v(row, "deceased_at"):
            return self._refuse(out, DECEASED, "deceased")
        status = _key(v(row, "membership_status") or "")
        if status in ("deceased", "decede", "decedee"):
            return self._refuse(out, DECEASED, "membership_status")

        grants, why_not, last = self._bases(row, status)
        consent = next((g for g in grants if g.basis == "consent"), None)
        if not grants:
            return self._refuse(out, NO_BASIS, "basis", why_not)

        # opt-outs win over every basis, consent included
        email_status = _key(v(row, "email_status") or "")
        email_out = (
            flag(v(row, "do_not_email"))
            or flag(v(row, "bulk_email_opt_out"))
            or flag(v(row, "unsubscribed"))
            or flag(v(row, "email_opt_in")) is False
            or any(w in email_status for w in ("unsub", "desabon", "desinscr", "opt out"))
        )
        contact_out = bool(flag(v(row, "do_not_contact")))
        removed = set()
        if contact_out:
            removed |= {"contact", "newsletter", "volunteering"}
            out.effects.append(CONTACT_OPT_OUT)
        if email_out:
            removed.add("newsletter")
            if not contact_out:
                out.effects.append(EMAIL_OPT_OUT)
        kept = []
        for g in grants:
            g.purposes = [p for p in g.purposes if p not in removed]
            if g.purposes:
                kept.append(g)
        if not kept:
            return self._refuse(out, OPTED_OUT, "opt_out")
        # one basis per purpose: consent first, then the strongest other basis
        taken: set[str] = set()
        order = {"consent": 0, "member": 1, "former_member": 2, "regular_contact": 3}
        final = []
        for g in sorted(kept, key=lambda g: order[g.basis]):
            g.purposes = sorted(p for p in g.purposes if p not in taken)
            taken.update(g.purposes)
            if g.purposes:
                final.append(g)
        if last is not None and last < self.horizon:
            return self._refuse(out, TOO_OLD, "last_contact_at")

        raw, parsed, no_geo = self._person(row, out)
        s = validate_person(raw, final[0])
        s.more = final[1:]
        s.parsed, s.no_geocode = parsed, no_geo
        s.last_contact_at = last
        s.tags = self._tags(row, out)
        out.supporter = s
        out.main_basis = "consent" if consent in final else final[0].basis
        return out

    def _refuse(self, out: Outcome, code: str, fieldname: str, detail: str = "") -> Outcome:
        out.refused = (code, fieldname, refusal_text(code, self.retention_months, detail))
        return out

    def _bases(self, row: dict[str, str], status: str) -> tuple[list[Consent], str, Any]:
        """The grants the row supports, why none when there are none, and its last contact."""
        grants: list[Consent] = []
        reasons: list[str] = []
        latest: list[datetime] = []
        v = self._v
        volunteer = bool(flag(v(row, "is_volunteer")))
        party = [*PARTY_PURPOSES, *(["volunteering"] if volunteer else [])]

        # consent, with its evidence, as for every import
        c = {k: v(row, k) for k in sources.CONSENT}
        if c.get("consent_given_at"):
            merged = {**self.defaults, **{k: x for k, x in c.items() if x}}
            consent = validate_consent(
                {CONSENT_FIELDS_OF_ROW[k]: x for k, x in merged.items() if k in c},
                prefix="consent.",
            )
            grants.append(consent)
            latest.append(consent.given_at)

        current = self._membership(row, status, party, grants, reasons, latest)
        self._regular_contact(row, party, grants, reasons, latest)
        if not grants and not reasons:
            reasons.append(
                _("no consent date, no membership, no repeated donations or events in the file")
            )
        last_contact = None if current else (max(latest) if latest else None)
        return grants, "; ".join(reasons), last_contact

    def _membership(
        self,
        row: dict[str, str],
        status: str,
        party: list[str],
        grants: list[Consent],
        reasons: list[str],
        latest: list[datetime],
    ) -> bool:
        """Membership: a current one (True) or one ended within the retention period is a
        grant; one ended before it, or with no end date, a reason. Adds to the lists."""
        v = self._v
        start = self._date(row, "membership_started_at")
        end = self._date(row, "membership_expires_at")
        created = self._date(row, "created_at")
        name = (v(row, "membership_name") or "").strip()[:60]
        label = f" '{name}'" if name else ""
        # the system's own status first (CiviCRM's Grace is still a member after the end date)
        ended = status not in ACTIVE and (status in ENDED or (end is not None and end < self.now))
        if ended:
            if end is None:
                reasons.append(_("a former member, but the file gives no end date"))
            elif end < self.horizon:
                reasons.append(_("a former member whose membership ended before the retention"))
            else:
                grants.append(
                    self._evidence(
                        "former_member",
                        _("membership{label} ended on {date}").format(
                            label=label, date=end.date().isoformat()
                        ),
                        end,
                        list(party),
                    )
                )
                latest.append(end)
        elif status not in PENDING and (
            status in ACTIVE or flag(v(row, "is_member")) or start is not None or name
        ):
            since = start or created
            text = (
                _("membership{label} since {date}").format(
                    label=label, date=since.date().isoformat()
                )
                if since
                else _("current membership{label}").format(label=label)
            )
            if status:
                text += _(" (status {status})").format(status=v(row, "membership_status"))
            grants.append(self._evidence("member", text, since, list(party)))
            return True

        return False

    def _regular_contact(
        self,
        row: dict[str, str],
        party: list[str],
        grants: list[Consent],
        reasons: list[str],
        latest: list[datetime],
    ) -> None:
        """Regular contact: two dated positive steps or more (donations, events), the last one
        within the retention period, is a grant; otherwise a reason. Adds to the lists."""
        v = self._v
        donations = crm_count(v(row, "donations_count"), self._col("donations_count"))
        events = crm_count(v(row, "events_count"), self._col("events_count"))
        d_last = self._date(row, "last_donated_at") or self._date(row, "first_donated_at")
        e_last = self._date(row, "last_event_at")
        steps = (donations if donations is not None else (1 if d_last else 0)) + (
            events if events is not None else (1 if e_last else 0)
        )
        dates = [d for d in (d_last, e_last) if d]
        if steps >= 2 and dates:
            last = max(dates)
            if last < self.horizon:
                reasons.append(_("donations or events, the last one before the retention"))
            else:
                parts = []
                if donations or d_last:
                    parts.append(_("{n} donation(s)").format(n=donations or 1))
                if events or e_last:
                    parts.append(_("{n} event(s) attended").format(n=events or 1))
                grants.append(
                    self._evidence(
                        "regular_contact",
                        _("{steps}, the last on {date}").format(
                            steps=", ".join(parts), date=last.date().isoformat()
                        ),
                        last,
                        list(party),
                    )
                )
                latest.append(last)
        elif steps == 1:
            reasons.append(
                _("a single donation or event is not regular contact (CNIL: frequent donors)")
            )

    def _person(self, row: dict[str, str], out: Outcome) -> tuple[dict[str, Any], Any, Any]:
        v = self._v
        name = " ".join(
            x for x in (v(row, "first_name"), v(row, "middle_name"), v(row, "last_name")) if x
        ) or v(row, "full_name")
        country = v(row, "country")
        france = is_france(country)
        phone = None
        if flag(v(row, "do_not_phone")):
            if v(row, "phone"):
                out.effects.append(PHONE_OPT_OUT)
        else:
            raw_phone = v(row, "phone")
            phone = crm_phone(raw_phone, france)
            if raw_phone and phone is None:
                out.effects.append(PHONE_INVALID)
        email = v(row, "email")
        if email:
            try:
                email = normalise_email(email)
            except InvalidInput:
                email = None
                out.effects.append(EMAIL_INVALID)
        lines = [x for x in (v(row, f"address{i}") for i in range(1, 5)) if x]
        if not lines and (v(row, "street_number") or v(row, "street_name")):
            lines = [" ".join(x for x in (v(row, "street_number"), v(row, "street_name")) if x)]
        postcode, city = v(row, "postcode"), v(row, "city")
        address = parsed = no_geo = None
        if lines or postcode or city:
            tail = " ".join(x for x in (postcode, city) if x)
            address = ", ".join([*lines, *([tail] if tail else []), *([] if france else [country])])
            if not france:
                no_geo = _(
                    "the address is in {country}: the local geocoder covers France only"
                ).format(country=country)
                out.effects.append(NOT_FRANCE)
            elif lines:
                parsed = parse_address(street_line(lines), postcode=postcode, city=city)
            else:
                parsed = parse_address("", postcode=postcode, city=city)
        return {"name": name, "email": email, "phone": phone, "address": address}, parsed, no_geo

    def _tags(self, row: dict[str, str], out: Outcome) -> list[str]:
        kept: list[str] = []
        for fld in sources.TAGS:
            for col in self.plan.sources.get(fld, ()):
                for tag in sources.split_tags(row.get(col), self.system.list_separators):
                    s = sources.slug(tag)
                    if s in self.tags_allowed:
                        if s not in kept:
                            kept.append(s)
                    elif s:
                        out.tags_dropped.append(s)
        return kept


def refusal_text(code: str, months: int, detail: str = "") -> str:
    """Why a row was refused (translated now); ``detail`` says what the file lacked."""
    text = {
        DECEASED: _("refused: the person is deceased"),
        DELETED: _("refused: the contact is deleted (in the trash) in the source system"),
        NOT_PERSON: _("refused: not a person (an organisation or a household)"),
        NO_BASIS: _(
            "refused: no legal basis (no consent with its date, and not a member, former member "
            "or regular contact, GDPR art. 9-2-d)"
        ),
        OPTED_OUT: _("refused: the person opted out of every purpose"),
        TOO_OLD: _(
            "refused: the last contact the file shows is older than the campaign's retention "
            "({months} months); it would be deleted at the next purge"
        ).format(months=months),
    }[code]
    return f"{text}: {detail}" if detail else text
