"""What the people exports of NationBuilder, CiviCRM and DigitaleBox hold, column by column.

Each system's standard export is described by its column names (from the system's own
documentation or code, see docs/privacy.md "Moving in from a CRM") and what Porte-à-porte does
with each: maps it to a field, reads it as evidence or an opt-out, or drops it with a reason.
Nothing here touches the database; ``basis.py`` decides the lawful basis of a row and
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
from app.services.people.supporters.core import CONSENT_FIELDS_OF_ROW

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

# Why a column is not stored (codes; the text is ``drop_reason``).
OPINION, FREE_TEXT, SENSITIVE, NOT_NEEDED, SOURCE_ID = (
    "opinion",
    "free_text",
    "sensitive",
    "not_needed",
    "source_id",
)
AMOUNT, DERIVED, RECORD_DATE, OTHER_ADDRESS = ("amount", "derived", "record_date", "other_address")
UNKNOWN, DUPLICATE = "unknown", "duplicate"


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


# ----------------------------------------------------------------------------- NationBuilder
# Column names of NationBuilder's people export (the person resource of its API, exported as CSV
# with these names) and of its import fields (support article "Fields available for import").
_NB_COLUMNS = (
    ("first_name", "first_name"),
    ("middle_name", "middle_name"),
    ("last_name", "last_name"),
    ("full_name", "full_name"),
    ("name", "full_name"),
    ("email", "email"),
    ("email1", "email"),
    ("email2", "email"),
    ("email3", "email"),
    ("email4", "email"),
    ("mobile_number", "phone"),
    ("phone_number", "phone"),
    ("primary_address1", "address1"),
    ("primary_address2", "address2"),
    ("primary_address3", "address3"),
    ("primary_city", "city"),
    ("primary_zip", "postcode"),
    ("primary_country_code", "country"),
    ("primary_country", "country"),
    ("address_address1", "address1"),
    ("address_address2", "address2"),
    ("address_address3", "address3"),
    ("address_city", "city"),
    ("address_zip", "postcode"),
    ("address_country_code", "country"),
    ("address_country", "country"),
    ("email_opt_in", "email_opt_in"),
    ("mobile_opt_in", "mobile_opt_in"),
    ("do_not_call", "do_not_phone"),
    ("federal_donotcall", "do_not_phone"),
    ("do_not_contact", "do_not_contact"),
    ("unsubscribed_at", "unsubscribed"),
    ("is_deceased", "deceased"),
    ("created_at", "created_at"),
    ("membership_names", "membership_name"),
    ("membership_level_name", "membership_name"),
    ("membership_name", "membership_name"),
    ("membership_status", "membership_status"),
    ("membership_started_at", "membership_started_at"),
    ("membership_expires_at", "membership_expires_at"),
    ("donations_count", "donations_count"),
    ("first_donated_at", "first_donated_at"),
    ("last_donated_at", "last_donated_at"),
    ("is_volunteer", "is_volunteer"),
    ("tag_list", "tags"),
    ("tags", "tags"),
)
_NB_DROPS = (
    ("support_level", OPINION),
    ("inferred_support_level", OPINION),
    ("party", OPINION),
    ("inferred_party", OPINION),
    ("previous_party", OPINION),
    ("party_member", OPINION),
    ("is_supporter", OPINION),
    ("is_prospect", OPINION),
    ("support_probability_score", OPINION),
    ("turnout_probability_score", OPINION),
    ("priority_level", OPINION),
    ("ballots", OPINION),
    ("note", FREE_TEXT),
    ("notes", FREE_TEXT),
    ("background", FREE_TEXT),
    ("religion", SENSITIVE),
    ("church", SENSITIVE),
    ("ethnicity", SENSITIVE),
    ("demo", SENSITIVE),
    ("updated_at", RECORD_DATE),
    ("nationbuilder_id", SOURCE_ID),
    ("id", SOURCE_ID),
    ("is_donor", NOT_NEEDED),
    ("sex", NOT_NEEDED),
    ("born_at", NOT_NEEDED),
    ("marital_status", NOT_NEEDED),
    ("employer", NOT_NEEDED),
    ("occupation", NOT_NEEDED),
    ("language", NOT_NEEDED),
    ("household_size", NOT_NEEDED),
    ("website", NOT_NEEDED),
    ("prefix", NOT_NEEDED),
    ("suffix", NOT_NEEDED),
    ("legal_name", NOT_NEEDED),
    ("work_phone_number", NOT_NEEDED),
    ("fax_number", NOT_NEEDED),
    ("is_fundraiser", NOT_NEEDED),
    ("is_ignore_donation_limits", NOT_NEEDED),
    ("availability", NOT_NEEDED),
    ("signup_type", NOT_NEEDED),
    ("primary_state", NOT_NEEDED),
    ("primary_county", NOT_NEEDED),
    ("primary_submitted_address", NOT_NEEDED),
    ("primary_fips", DERIVED),
    ("primary_geocode_accuracy", DERIVED),
)
_NB_PATTERNS = (
    (r"^(mailing|registered|user submitted|work|billing) ", OTHER_ADDRESS),
    (r"(^| )(district|ward|precinct)", DERIVED),
    (r"(^| )(amount|capital|invoice|invoices|donation possible)( |$)", AMOUNT),
    (r"amount", AMOUNT),
    (r"(^| )id$|(^| )guid$|(^| )regid$", SOURCE_ID),
    (r"^(twitter|facebook|linkedin|meetup|profile image|is twitter|has facebook)", NOT_NEEDED),
    (r"^email\d is bad$|^is mobile bad$", NOT_NEEDED),
    (r"^(recruiter|point person|assistant|author|parent|active customer|is customer)", NOT_NEEDED),
    (r"(^| )(count|donations count) this cycle$", NOT_NEEDED),
    (r"^media market", NOT_NEEDED),
)

# ----------------------------------------------------------------------------------- CiviCRM
# Titles of CiviCRM's contact export ("Export PRIMARY fields"), and of the membership search
# export, as CiviCRM's own export tests list them (tests/phpunit/CRM/Export/BAO/ExportTest.php).
_CIVI_COLUMNS = (
    ("First Name", "first_name"),
    ("Middle Name", "middle_name"),
    ("Last Name", "last_name"),
    ("Display Name", "full_name"),
    ("Email", "email"),
    ("Phone", "phone"),
    ("Street Address", "address1"),
    ("Supplemental Address 1", "address2"),
    ("Supplemental Address 2", "address3"),
    ("Supplemental Address 3", "address4"),
    ("Street Number", "street_number"),
    ("Street Name", "street_name"),
    ("City", "city"),
    ("Postal Code", "postcode"),
    ("Country", "country"),
    ("Do Not Email", "do_not_email"),
    ("Do Not Phone", "do_not_phone"),
    ("Do Not Mail", "do_not_mail"),
    ("Do Not Sms", "do_not_sms"),
    ("Do Not Trade", "do_not_trade"),
    ("No Bulk Emails (User Opt Out)", "bulk_email_opt_out"),
    ("Deceased", "deceased"),
    ("Deceased Date", "deceased_at"),
    ("Contact is in Trash", "deleted"),
    ("Contact Type", "contact_type"),
    ("Created Date", "created_at"),
    ("Membership Type", "membership_name"),
    ("Membership Status", "membership_status"),
    ("Member Since", "membership_started_at"),
    ("Membership Start Date", "membership_started_at"),
    ("Membership Expiration Date", "membership_expires_at"),
    ("Membership End Date", "membership_expires_at"),
    ("Date Received", "last_donated_at"),
    ("Tag(s)", "tags"),
    ("Group(s)", "groups"),
)
_CIVI_DROPS = (
    ("Note(s)", FREE_TEXT),
    ("Note", FREE_TEXT),
    ("Details", FREE_TEXT),
    ("Modified Date", RECORD_DATE),
    ("Contact ID", SOURCE_ID),
    ("External Identifier", SOURCE_ID),
    ("Legal Identifier", SOURCE_ID),
    ("Contact Hash", SOURCE_ID),
    ("Unique ID (OpenID)", SOURCE_ID),
    ("Current Employer ID", SOURCE_ID),
    ("Address ID", SOURCE_ID),
    ("Membership ID", SOURCE_ID),
    ("Primary Member ID", SOURCE_ID),
    ("Campaign ID", SOURCE_ID),
    ("Total Amount", AMOUNT),
    ("Fee Amount", AMOUNT),
    ("Net Amount", AMOUNT),
    ("Latitude", DERIVED),
    ("Longitude", DERIVED),
    ("Sort Name", NOT_NEEDED),
    ("Nickname", NOT_NEEDED),
    ("Legal Name", NOT_NEEDED),
    ("Contact Subtype", NOT_NEEDED),
    ("Contact Source", NOT_NEEDED),
    ("Image Url", NOT_NEEDED),
    ("Preferred Communication Method", NOT_NEEDED),
    ("Preferred Language", NOT_NEEDED),
    ("Preferred Mail Format", NOT_NEEDED),
    ("Communication Style", NOT_NEEDED),
    ("Individual Prefix", NOT_NEEDED),
    ("Individual Suffix", NOT_NEEDED),
    ("Formal Title", NOT_NEEDED),
    ("Email Greeting ID", NOT_NEEDED),
    ("Postal Greeting ID", NOT_NEEDED),
    ("Addressee ID", NOT_NEEDED),
    ("Addressee", NOT_NEEDED),
    ("Email Greeting", NOT_NEEDED),
    ("Postal Greeting", NOT_NEEDED),
    ("Job Title", NOT_NEEDED),
    ("Gender", NOT_NEEDED),
    ("Gender ID", NOT_NEEDED),
    ("Birth Date", NOT_NEEDED),
    ("Household Name", NOT_NEEDED),
    ("Organization Name", NOT_NEEDED),
    ("Sic Code", NOT_NEEDED),
    ("Current Employer", NOT_NEEDED),
    ("Location Type", NOT_NEEDED),
    ("Address Location Type", NOT_NEEDED),
    ("Street Number Suffix", NOT_NEEDED),
    ("Street Unit", NOT_NEEDED),
    ("Postal Code Suffix", NOT_NEEDED),
    ("Address Name", NOT_NEEDED),
    ("Master Address Belongs To", NOT_NEEDED),
    ("County", NOT_NEEDED),
    ("State", NOT_NEEDED),
    ("World Region", NOT_NEEDED),
    ("Phone Extension", NOT_NEEDED),
    ("Phone Type", NOT_NEEDED),
    ("On Hold", NOT_NEEDED),
    ("Use for Bulk Mail", NOT_NEEDED),
    ("Signature Text", NOT_NEEDED),
    ("Signature Html", NOT_NEEDED),
    ("IM Provider", NOT_NEEDED),
    ("IM Screen Name", NOT_NEEDED),
    ("OpenID", NOT_NEEDED),
    ("Website", NOT_NEEDED),
    ("Test", NOT_NEEDED),
    ("Is Pay Later", NOT_NEEDED),
    ("Source", NOT_NEEDED),
    ("max_related", NOT_NEEDED),
    ("membership_recur_id", NOT_NEEDED),
    ("member_is_override", NOT_NEEDED),
    ("member_auto_renew", NOT_NEEDED),
)

# ------------------------------------------------------------------------------- DigitaleBox
# DigitaleBox publishes no documentation of its export. The names below are the people fields
# of DigitaleBox's own application code (attribute labels of its people model: First Name, Last
# Name, Email, Mobile, Street Address, Zip, City, Country, Gender, Date of Birth, Category,
# Keywords, Notes, Email Status, Unsubscribe Email) and their French forms, which the French
# interface shows (Prénom, Nom, Mobile, Adresse, Code postal, Ville, Pays, Mots clés...).
# Membership, donation and consent columns are NOT documented anywhere public: the French names
# below are the plain ones a French export would use, and are listed as such in docs/privacy.md.
_DB_COLUMNS = (
    ("First Name", "first_name"),
    ("Prénom", "first_name"),
    ("Last Name", "last_name"),
    ("Nom", "last_name"),
    ("Nom d'usage", "last_name"),
    ("Nom usage", "last_name"),
    ("Nom de naissance", "last_name"),
    ("Email", "email"),
    ("E-mail", "email"),
    ("Courriel", "email"),
    ("Mobile", "phone"),
    ("Téléphone portable", "phone"),
    ("Téléphone mobile", "phone"),
    ("Téléphone", "phone"),
    ("Street Address", "address1"),
    ("Adresse", "address1"),
    ("Adresse 1", "address1"),
    ("Complément d'adresse", "address2"),
    ("Adresse 2", "address2"),
    ("Adresse 3", "address3"),
    ("Numéro de rue", "street_number"),
    ("Nom de rue", "street_name"),
    ("Zip", "postcode"),
    ("Code postal", "postcode"),
    ("City", "city"),
    ("Ville", "city"),
    ("Commune", "city"),
    ("Country", "country"),
    ("Pays", "country"),
    ("Email Status", "email_status"),
    ("Statut email", "email_status"),
    ("Statut de l'email", "email_status"),
    ("Unsubscribe Email", "unsubscribed"),
    ("Désabonné", "unsubscribed"),
    ("Désinscrit", "unsubscribed"),
    ("Décédé", "deceased"),
    ("Date de création", "created_at"),
    ("Created At", "created_at"),
    ("Adhérent", "is_member"),
    ("Type d'adhésion", "membership_name"),
    ("Statut d'adhésion", "membership_status"),
    ("Date d'adhésion", "membership_started_at"),
    ("Fin d'adhésion", "membership_expires_at"),
    ("Date de fin d'adhésion", "membership_expires_at"),
    ("Nombre de dons", "donations_count"),
    ("Date du premier don", "first_donated_at"),
    ("Date du dernier don", "last_donated_at"),
    ("Dernier don", "last_donated_at"),
    ("Nombre d'événements", "events_count"),
    ("Dernier événement", "last_event_at"),
    ("Bénévole", "is_volunteer"),
    ("Keywords", "tags"),
    ("Mots clés", "tags"),
    ("Mots-clés", "tags"),
)
_DB_DROPS = (
    ("Category", OPINION),
    ("Catégorie", OPINION),
    ("Potential Category", OPINION),
    ("Notes", FREE_TEXT),
    ("Note", FREE_TEXT),
    ("Commentaire", FREE_TEXT),
    ("Commentaires", FREE_TEXT),
    ("Gender", NOT_NEEDED),
    ("Genre", NOT_NEEDED),
    ("Sexe", NOT_NEEDED),
    ("Civilité", NOT_NEEDED),
    ("Date of Birth", NOT_NEEDED),
    ("Date de naissance", NOT_NEEDED),
    ("Date de modification", RECORD_DATE),
    ("Updated At", RECORD_DATE),
    ("ID", SOURCE_ID),
    ("Identifiant", SOURCE_ID),
    ("Réseau", NOT_NEEDED),
    ("Network", NOT_NEEDED),
)

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
        _NB_COLUMNS,
        _NB_DROPS,
        _NB_PATTERNS,
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
        _CIVI_COLUMNS,
        _CIVI_DROPS,
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
        _DB_COLUMNS,
        _DB_DROPS,
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
