"""How the cells of a CRM export read: yes/no flags, dates, counts, membership statuses, person
types, countries (France and its overseas parts), phone numbers, street lines. Each reader
answers None for an empty cell; a malformed date or count is a rejected row (InvalidInput naming
the column). ``basis.py`` decides a row's lawful basis with them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from app.errors import InvalidInput
from app.frenchdata import _key, parse_datetime
from app.i18n import _
from app.services.access.crypto import normalise_phone

_TRUE = {"1", "true", "yes", "oui", "y", "o", "x", "vrai", "t", "checked"}
_FALSE = {"0", "false", "no", "non", "n", "faux", "f", "", "none", "null", "unchecked"}
ACTIVE = {
    "new",
    "current",
    "grace",
    "active",
    "actif",
    "active membership",
    "en cours",
    "a jour",
    "valide",
    "valid",
    "nouveau",
    "nouvelle",
    "renouvele",
    "renewed",
}
ENDED = {
    "expired",
    "lapsed",
    "cancelled",
    "canceled",
    "expire",
    "expiree",
    "echu",
    "echue",
    "resilie",
    "resiliee",
    "annule",
    "annulee",
    "ancien",
    "ancienne",
    "ancien adherent",
    "former",
    "inactive",
    "inactif",
    "radie",
    "radiee",
    "non renouvele",
}
PENDING = {"pending", "en attente", "attente", "a valider"}
PERSON_TYPES = {"individual", "individu", "personne", "person", "particulier"}
_FRANCE = {
    "fr",
    "fra",
    "250",
    "france",
    "france metropolitaine",
    "republique francaise",
    # overseas départements and collectivities covered by the BAN
    "gp",
    "mq",
    "gf",
    "re",
    "yt",
    "pm",
    "bl",
    "mf",
    "guadeloupe",
    "martinique",
    "guyane",
    "guyane francaise",
    "reunion",
    "la reunion",
    "mayotte",
    "saint pierre et miquelon",
    "saint barthelemy",
    "saint martin",
}
_STREET_WORDS = re.compile(
    r"(^| )(rue|avenue|av|boulevard|bd|place|pl|chemin|allee|impasse|route|rte|quai|cours|"
    r"square|passage|voie|sentier|faubourg|lotissement|hameau|lieu dit|lieudit|promenade|"
    r"rond point|esplanade|parvis|venelle|ruelle|traverse|montee|cite|residence)( |$)"
)


def flag(value: str | None) -> bool | None:
    """A yes/no cell: None when empty; any value but a 'no' counts as yes (a date, 'Y', '1')."""
    if value is None or not value.strip():
        return None
    return _key(value) not in _FALSE


def crm_date(value: str | None, column: str) -> datetime | None:
    """A date cell (ISO 8601, day-first French, or 'YYYY-MM-DD HH:MM:SS -0700'); InvalidInput."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    try:
        dt = parse_datetime(v)
    except ValueError:
        dt = None
        for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y%m%d"):
            try:
                dt = datetime.strptime(v, fmt)
                break
            except ValueError:
                continue
        if dt is None:
            raise InvalidInput(
                _("is not a date (expected ISO 8601, e.g. 2024-03-01, or dd/mm/yyyy)"),
                field=column,
            ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def crm_count(value: str | None, column: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(float(value.strip().replace(",", ".")))
    except ValueError:
        raise InvalidInput(_("is not a number"), field=column) from None


def is_france(country: str | None) -> bool:
    """True for an empty country (France is assumed) and every spelling of France."""
    return not country or _key(country) in _FRANCE


def crm_phone(value: str | None, france: bool) -> str | None:
    """A phone as CRM exports write it, in E.164; None when it is not a phone number."""
    if not value:
        return None
    v = value.strip()
    digits = re.sub(r"\D", "", v)
    if not v.startswith(("+", "00")):
        if len(digits) == 11 and digits.startswith("33"):
            v = "+" + digits  # 33612345678: the country code without its +
        elif france and len(digits) == 9 and digits[0] != "0":
            v = "0" + digits  # 612345678: a spreadsheet dropped the leading zero
    try:
        return normalise_phone(v)
    except InvalidInput:
        return None


def street_line(lines: list[str]) -> str:
    for line in lines:
        if line[:1].isdigit():
            return line
    for line in lines:
        if _STREET_WORDS.search(_key(line)):
            return line
    return lines[0]
