"""How French files write dates and labels: ``jj/mm/aaaa``, and words beside the codes.

Campaign files come from spreadsheets typed in French: dates as ``10/01/2026`` (10 January),
``10/01/2026 18:30``, ``10-01-2026``, ``10.01.2026``; consent purposes and channels, and visit
outcomes, as French words ("absent", "porte-à-porte", "bénévolat"). The codes stay accepted.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

_FR_DATE = re.compile(
    r"^(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4})"
    r"(?:[ T](?P<H>\d{1,2})[:hH](?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)


PARIS = ZoneInfo("Europe/Paris")


def parse_datetime(value: str) -> datetime:
    """ISO 8601, or a French day-first date (read as Paris time); ValueError when neither."""
    text = value.strip()
    match = _FR_DATE.match(text)
    if match:
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        return datetime(
            parts["y"],
            parts["m"],
            parts["d"],
            parts.get("H", 0),
            parts.get("M", 0),
            parts.get("S", 0),
            tzinfo=PARIS,
        )
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _key(word: str) -> str:
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def label_map(codes: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``{code: (French words...)}`` -> a lookup from any spelling (accents, case) to the code."""
    out: dict[str, str] = {}
    for code, words in codes.items():
        out[_key(code)] = code
        for w in words:
            out[_key(w)] = code
    return out


def to_code(value: str, lookup: dict[str, str]) -> str | None:
    """The code for a code or a French label (None when unknown)."""
    return lookup.get(_key(value))


PURPOSE_LABELS = label_map(
    {
        "contact": ("contacter", "prise de contact", "être contacté", "etre contacte"),
        "mapping": ("cartographie", "carte", "carto", "localisation"),
        "volunteering": ("bénévolat", "benevole", "bénévole", "militer", "militantisme"),
        "newsletter": ("lettre d'information", "lettre d'info", "infolettre", "actualités"),
    }
)
CHANNEL_LABELS = label_map(
    {
        "door": ("porte-à-porte", "porte à porte", "porte", "pap"),
        "form": ("formulaire", "formulaire web", "site", "en ligne"),
        "event": ("événement", "evenement", "réunion", "meeting", "rassemblement"),
        "membership": ("adhésion", "adhesion", "adhérent", "adherent", "bulletin d'adhésion"),
    }
)
OUTCOME_LABELS = label_map(
    {
        "not_home": ("absent", "absente", "absents", "pas là", "personne"),
        "talked": ("discuté", "parlé", "échange", "contact", "ouvert"),
        "refused": ("refus", "refusé", "a refusé"),
        "moved": ("déménagé", "parti", "a déménagé"),
        "no_access": ("pas d'accès", "inaccessible", "digicode", "accès impossible"),
        "do_not_knock": ("ne pas frapper", "ne plus frapper", "opposition", "ne pas revenir"),
    }
)
