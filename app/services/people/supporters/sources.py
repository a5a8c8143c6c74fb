"""What the people exports of NationBuilder, CiviCRM and DigitaleBox hold, column by column.

Each system's standard export is described by its column names (from the system's own
documentation or code, see docs/privacy.md "Moving in from a CRM") and what Porte-à-porte does
with each: maps it to a field, reads it as evidence or an opt-out, or drops it with a reason.
The column tables themselves are in ``crm_columns.py``; this module builds the registry of systems
from them, recognises a file's system and plans what each column becomes. Nothing here touches
the database; ``basis.py`` decides the lawful basis of a row and
``imports.py`` runs the rows through the usual pipeline.

Columns are matched on a key that ignores case, accents and punctuation ("No Bulk Emails (User Opt
Out)" and "no bulk emails user opt out" are the same column), so a French spreadsheet's "Prénom"
matches "prenom".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.errors import InvalidInput
from app.frenchdata import _key
from app.i18n import _
from app.services.people.supporters.crm_columns import (  # noqa: F401  (the codes are re-exported)
    AMOUNT,
    CIVI_COLUMNS,
    CIVI_DROPS,
    DB_COLUMNS,
    DB_DROPS,
    DERIVED,
    DUPLICATE,
    FREE_TEXT,
    NB_COLUMNS,
    NB_DROPS,
    NB_PATTERNS,
    NOT_NEEDED,
    OPINION,
    OTHER_ADDRESS,
    RECORD_DATE,
    SENSITIVE,
    SOURCE_ID,
    UNKNOWN,
)
from app.services.people.supporters.validation import CONSENT_FIELDS_OF_ROW

SYSTEMS = ("nationbuilder", "civicrm", "digitalebox")
SYSTEM_NAMES = {
    "nationbuilder": "NationBuilder",
    "civicrm": "CiviCRM",
    "digitalebox": "DigitaleBox",
}

# Canonical fields of a CRM row (the converter in basis.py reads these).
PERSON = ("first_name", "middle_name", "last_name", "full_name", "email", "phone")
ADDRESS = (
    "address1",
    "address2",
    "address3",
    "address4",
    "street_number",
    "street_name",
    "postcode",
    "city",
    "country",
)
FLAGS = (
    "email_opt_in",
    "mobile_opt_in",
    "do_not_email",
    "do_not_phone",
    "do_not_sms",
    "do_not_mail",
    "do_not_trade",
    "do_not_contact",
    "bulk_email_opt_out",
    "unsubscribed",
    "email_status",
    "deceased",
    "deceased_at",
    "deleted",
    "contact_type",
)
EVIDENCE = (
    "created_at",
    "membership_name",
    "membership_status",
    "membership_started_at",
    "membership_expires_at",
    "is_member",
    "donations_count",
    "first_donated_at",
    "last_donated_at",
    "events_count",
    "last_event_at",
    "is_volunteer",
)
TAGS = ("tags", "groups")
CONSENT = tuple(CONSENT_FIELDS_OF_ROW)  # the consent columns of a plain import
CANONICAL = (*PERSON, *ADDRESS, *FLAGS, *EVIDENCE, *TAGS, *CONSENT)


def drop_reason(code: str, system: str | None = None) -> str:
    """Why a column of that kind never comes across (translated now)."""
    name = SYSTEM_NAMES.get(system or "", system or "")
    texts = {
        OPINION: _(
            "a political opinion, stated, inferred or scored: Porte-à-porte stores no opinion "
            "about a person (GDPR art. 9; no guessed opinion)"
        ),
        FREE_TEXT: _(
            "free text about the person, which may hold opinions or health data: never stored "
            "(GDPR art. 9; no free-text note about a household)"
        ),
        SENSITIVE: _("special-category data (religion, ethnicity), GDPR art. 9: never stored"),
        NOT_NEEDED: _("not needed to canvass (data minimisation, GDPR art. 5-1-c)"),
        SOURCE_ID: _(
            "an identifier of the source system: not kept; duplicates are found by the keyed "
            "hash of the e-mail and phone"
        ),
        AMOUNT: _(
            "an amount of money: not needed; the number and dates of donations are the evidence "
            "of regular contact"
        ),
        DERIVED: _(
            "derived from the address elsewhere (districts, coordinates): Porte-à-porte places "
            "the address on its own loaded doors"
        ),
        RECORD_DATE: _("a change to the record is not a contact with the person: not used"),
        OTHER_ADDRESS: _(
            "another address than the home address: only the home (primary) address is canvassed"
        ),
        UNKNOWN: _(
            "not a column of {system}'s standard export known to Porte-à-porte: not stored (map "
            "it with --mapping if it holds a supported field)"
        ).format(system=name),
        DUPLICATE: _(
            "the same column name appears again: the first non-empty value of the columns of "
            "that name is used"
        ),
    }
    return texts[code]


def field_meaning(fieldname: str) -> str:
    """What a canonical field is used for (the dry run's 'maps to' column)."""
    if fieldname in ("first_name", "middle_name", "last_name", "full_name"):
        return _("name (encrypted)")
    if fieldname in ("email", "phone"):
        return _("{field} (encrypted, keyed hash for duplicates)").format(field=fieldname)
    if fieldname in ADDRESS:
        return _("address: {part} (encrypted; geocoded locally)").format(part=fieldname)
    if fieldname in FLAGS:
        return _("opt-out / status, honoured: {flag} (not stored)").format(flag=fieldname)
    if fieldname in EVIDENCE:
        return _("evidence of the legal basis: {what}").format(what=fieldname)
    if fieldname in TAGS:
        return _("tags, kept only if in --tags")
    return _("consent record: {what}").format(what=fieldname)


@dataclass(frozen=True)
class System:
    """One CRM's people export: column key -> canonical field (in priority order), drops."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column name as exported, canonical field)
    drops: tuple[tuple[str, str], ...]  # (column name as exported, reason code)
    patterns: tuple[tuple[str, str], ...] = ()  # (regex on the column key, reason code)
    signature: tuple[str, ...] = ()  # column names that (almost) only this system exports
    list_separators: str = ","

    def field_of(self, key: str) -> str | None:
        return _FIELDS[self.name].get(key)

    def drop_of(self, key: str) -> str | None:
        code = _DROPS[self.name].get(key)
        if code:
            return code
        for rx, code in self.patterns:
            if re.search(rx, key):
                return code
        return None

    def recognises(self, key: str) -> bool:
        return key in _FIELDS[self.name] or key in _DROPS[self.name]


# Column-name words that betray an opinion or a judgement, whatever the system (custom fields).
_OPINION_WORDS = re.compile(
    r"(^| )(support|supporter|soutien|sympath\w*|opinion|party|parti|partisan|vote|votes|voting|"
    r"vote intention|intention|score|scores|probability|probabilite|inferred|perceived|percu|"
    r"percue|leaning|orientation|politique|political|preference|propensity|persuadable|"
    r"persuasion|undecided|indecis|opposant|opponent|adversaire|likely|potential|potentiel|"
    r"categorie|category|niveau de soutien)( |$)"
)
_FREE_TEXT_WORDS = re.compile(
    r"(^| )(note|notes|comment|comments|commentaire|commentaires|remarque|remarques|"
    r"observations?|background|bio)( |$)"
)


def _build(columns: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, fld in columns:
        out.setdefault(_key(name), fld)
    return out


REGISTRY = {
    "nationbuilder": System(
        "nationbuilder",
        NB_COLUMNS,
        NB_DROPS,
        NB_PATTERNS,
        signature=(
            "nationbuilder_id",
            "tag_list",
            "primary_address1",
            "primary_zip",
            "email_opt_in",
            "support_level",
            "do_not_contact",
            "membership_started_at",
        ),
    ),
    "civicrm": System(
        "civicrm",
        CIVI_COLUMNS,
        CIVI_DROPS,
        signature=(
            "Contact ID",
            "Contact Type",
            "Do Not Email",
            "No Bulk Emails (User Opt Out)",
            "Supplemental Address 1",
            "Contact is in Trash",
            "Sort Name",
            "Contact Hash",
            "Member Since",
        ),
    ),
    "digitalebox": System(
        "digitalebox",
        DB_COLUMNS,
        DB_DROPS,
        signature=(
            "Mots clés",
            "Keywords",
            "Catégorie",
            "Category",
            "Unsubscribe Email",
            "Statut email",
            "Email Status",
            "Désabonné",
            "Zip",
        ),
        list_separators=",;|",
    ),
}
_FIELDS = {name: _build(s.columns) for name, s in REGISTRY.items()}
_DROPS = {name: _build(s.drops) for name, s in REGISTRY.items()}
# Porte-à-porte's own consent field names are recognised in every system's file.
for _f in _FIELDS.values():
    for _c in CONSENT:
        _f.setdefault(_key(_c), _c)


def key(column: str) -> str:
    """The comparison key of a column name (case, accents, ``_`` and punctuation ignored)."""
    return _key(column)


def _recognised(system: System, header_keys: list[str]) -> list[str]:
    return [k for k in header_keys if system.recognises(k)]


@dataclass
class Detection:
    """Which system a header looks like, and how sure."""

    system: str | None
    counts: dict[str, int]
    signature_hits: dict[str, list[str]]
    columns: int

    def describe(self, system: str) -> str:
        return _("{n} of {total} columns are {name}'s ({sig})").format(
            n=self.counts[system],
            total=self.columns,
            name=SYSTEM_NAMES[system],
            sig=", ".join(self.signature_hits[system][:4]) or _("none of its own"),
        )


def detect(header: list[str]) -> Detection:
    """Score the header against every system: recognised columns and signature columns."""
    keys = [key(h) for h in header]
    counts, hits = {}, {}
    for name, system in REGISTRY.items():
        counts[name] = len(_recognised(system, keys))
        sig = {key(s) for s in system.signature}
        hits[name] = [h for h, k in zip(header, keys, strict=True) if k in sig]
    ranked = sorted(SYSTEMS, key=lambda s: (len(hits[s]), counts[s]), reverse=True)
    best, second = ranked[0], ranked[1]
    sure = (
        len(hits[best]) >= 2
        and counts[best] >= 3
        and (len(hits[best]), counts[best]) > (len(hits[second]), counts[second])
    )
    return Detection(best if sure else None, counts, hits, len(header))


def choose(source: str, header: list[str]) -> tuple[str, str]:
    """The system to read the file as, and a sentence saying why; InvalidInput when it is not
    recognised (``auto``) or when the file is plainly another system's export."""
    if source not in (*SYSTEMS, "auto"):
        raise InvalidInput(
            _("unknown source {source!r}; choose one of: {choices}").format(
                source=source, choices=", ".join((*SYSTEMS, "auto"))
            ),
            field="from",
        )
    d = detect(header)
    if source == "auto":
        if d.system is None:
            raise InvalidInput(
                _(
                    "the header does not look like a NationBuilder, CiviCRM or DigitaleBox export "
                    "({details}); name the system with --from, or import it with a --mapping"
                ).format(details="; ".join(d.describe(s) for s in SYSTEMS)),
                field="from",
            )
        return d.system, _("recognised as a {name} export: {why}").format(
            name=SYSTEM_NAMES[d.system], why=d.describe(d.system)
        )
    if d.system is not None and d.system != source and len(d.signature_hits[source]) < 2:
        raise InvalidInput(
            _(
                "this file looks like a {other} export, not {named}: {why_other}, against "
                "{why_named}. Use --from {other_code} (or --from auto)."
            ).format(
                other=SYSTEM_NAMES[d.system],
                named=SYSTEM_NAMES[source],
                why_other=d.describe(d.system),
                why_named=d.describe(source),
                other_code=d.system,
            ),
            field="from",
        )
    if d.counts[source] < 2:
        raise InvalidInput(
            _(
                "this file does not look like a {named} export: {why}. Check the file, or name "
                "its columns with --mapping."
            ).format(named=SYSTEM_NAMES[source], why=d.describe(source)),
            field="from",
        )
    return source, _("read as a {name} export: {why}").format(
        name=SYSTEM_NAMES[source], why=d.describe(source)
    )


@dataclass
class ColumnPlan:
    """What happens to each column of the file."""

    system: str
    header: list[str]
    sources: dict[str, list[str]] = field(default_factory=dict)  # canonical -> columns, by rank
    mapped: dict[str, str] = field(default_factory=dict)  # column -> canonical field
    dropped: dict[str, str] = field(default_factory=dict)  # column -> reason code

    def rows(self) -> list[dict[str, str]]:
        """Per column: maps to / dropped, with why (for the report)."""
        out = []
        for col in self.header:
            if col in self.mapped:
                fld = self.mapped[col]
                out.append({"column": col, "maps_to": fld, "use": field_meaning(fld)})
            else:
                code = self.dropped.get(col, UNKNOWN)
                out.append({"column": col, "dropped": code, "why": drop_reason(code, self.system)})
        return out


def plan_columns(
    system: str, header: list[str], base_names: list[str], overrides: dict[str, str]
) -> ColumnPlan:
    """Map every column of the header (unique names; ``base_names`` as written in the file).

    ``overrides`` (from --mapping) win: column -> canonical field. Columns of the same name
    (duplicated in the file) are alternative sources for their field, in file order.
    """
    sysdef = REGISTRY[system]
    plan = ColumnPlan(system, header)
    ranked: list[tuple[int, int, str, str]] = []  # (alias rank, position, column, field)
    alias_rank = {k: i for i, k in enumerate(_FIELDS[system])}
    for pos, (col, base) in enumerate(zip(header, base_names, strict=True)):
        if col in overrides:
            ranked.append((-1, pos, col, overrides[col]))
            continue
        k = key(base)
        fld = sysdef.field_of(k)
        if fld:
            ranked.append((alias_rank[k], pos, col, fld))
            continue
        code = sysdef.drop_of(k)
        if code is None:
            if _OPINION_WORDS.search(k):
                code = OPINION
            elif _FREE_TEXT_WORDS.search(k):
                code = FREE_TEXT
            else:
                code = UNKNOWN
        plan.dropped[col] = code
    for _rank, _pos, col, fld in sorted(ranked):
        plan.sources.setdefault(fld, []).append(col)
        plan.mapped[col] = fld
    return plan


def first_value(row: dict[str, str], plan: ColumnPlan, fld: str) -> str | None:
    """The first non-empty value of a canonical field's columns in a row."""
    for col in plan.sources.get(fld, ()):
        v = (row.get(col) or "").strip()
        if v:
            return v
    return None


# ---------------------------------------------------------------------------------- tags
_TAG_OPINION = re.compile(
    r"(support|soutien|sympath|oppos|advers|perceiv|percu|indecis|undecided|leaning|likely|"
    r"probab|score|vote|intention|opinion|prospect|hostile|favorable|favourable|defavorable)"
)


def slug(tag: str) -> str:
    """A tag as stored: lower case, no accents, words joined by '-' (at most 40 characters)."""
    return "-".join(_key(tag).split())[:40]


def allow_list(raw: str | Iterable[str] | None) -> frozenset[str]:
    """The admin's tag allow-list; a tag that names an opinion is refused (InvalidInput)."""
    if raw is None:
        return frozenset()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out = set()
    for item in items:
        s = slug(str(item))
        if not s:
            continue
        if _TAG_OPINION.search(s):
            raise InvalidInput(
                _(
                    "tag {tag!r} names an opinion or a judgement about people; Porte-à-porte "
                    "stores no guessed opinion (GDPR art. 9): leave it out of --tags"
                ).format(tag=s),
                field="tags",
            )
        out.add(s)
    return frozenset(out)


def split_tags(value: str | None, separators: str) -> list[str]:
    """The tags of a cell (comma-separated, or the system's separators)."""
    if not value:
        return []
    return [t.strip() for t in re.split("[" + re.escape(separators) + "]", value) if t.strip()]
