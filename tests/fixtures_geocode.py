"""Typed addresses DERIVED from Bruz's real doors (BAL 35047), for geocoder tests and the benchmark.

The doors are real (``address`` rows with source 'bal', loaded from
``data/addresses/bal_35047_bruz.csv``); the typed strings are GENERATED here, deterministically
(fixed seed), to imitate what people type: abbreviations, missing accents, typos, a wrong postcode,
bis/ter written in several ways, no comma, capitals. Each case names the door it should find.
Nothing here is real input from a person.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from sqlalchemy import text

SEED = 20261126
BRUZ = "35047"

ABBREV = {
    "rue": ["r.", "r", "Rue"],
    "avenue": ["av.", "av", "Ave"],
    "boulevard": ["bd", "Bd."],
    "place": ["pl.", "Pl"],
    "chemin": ["chem.", "ch."],
    "allée": ["all.", "allee"],
    "allee": ["all."],
    "impasse": ["imp.", "Imp"],
    "square": ["sq."],
    "saint": ["St", "st"],
    "sainte": ["Ste"],
    "route": ["rte"],
    "résidence": ["res.", "résid."],
}
NEIGHBOUR_KEYS = {
    "a": "z",
    "e": "r",
    "i": "o",
    "o": "i",
    "u": "y",
    "n": "b",
    "r": "t",
    "s": "d",
    "t": "r",
    "l": "k",
    "m": "n",
    "c": "v",
    "d": "s",
}


@dataclass(frozen=True)
class Case:
    """One typed address and the door (address.id) it must find; ``kind`` names the variant."""

    typed: str
    kind: str
    expected_id: int | None
    lon: float | None
    lat: float | None
    expected_street: str | None = None


def strip_accents(s: str) -> str:
    """'Noë' -> 'Noe'."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def _abbreviate(name: str, rng: random.Random) -> str:
    words = name.split(" ")
    for i, w in enumerate(words):
        key = w.lower()
        if key in ABBREV and (i == 0 or key in ("saint", "sainte")):
            words[i] = rng.choice(ABBREV[key])
            return " ".join(words)
    return name.lower()


def _typo(name: str, rng: random.Random) -> str:
    words = name.split(" ")
    # the longest word of the proper name (not the street type) gets one slip of the finger
    idx = max(range(1, len(words)) if len(words) > 1 else [0], key=lambda i: len(words[i]))
    w = words[idx]
    if len(w) < 5:
        return strip_accents(name)
    pos = rng.randrange(1, len(w) - 1)
    op = rng.choice(["delete", "swap", "replace", "double"])
    if op == "delete":
        w = w[:pos] + w[pos + 1 :]
    elif op == "swap":
        w = w[:pos] + w[pos + 1] + w[pos] + w[pos + 2 :]
    elif op == "replace":
        c = w[pos].lower()
        w = w[:pos] + NEIGHBOUR_KEYS.get(c, c) + w[pos + 1 :]
    else:
        w = w[:pos] + w[pos] + w[pos:]
    words[idx] = w
    return " ".join(words)


def _suffix(num: int, suf: str, rng: random.Random) -> str:
    s = suf.lower()
    if s == "bis":
        return rng.choice([f"{num}bis", f"{num} bis", f"{num} BIS", f"{num}b"])
    if s == "ter":
        return rng.choice([f"{num}ter", f"{num} ter", f"{num} TER"])
    if s == "quater":
        return f"{num} quater"
    return rng.choice([f"{num}{suf}", f"{num} {suf.upper()}", f"{num}{suf.lower()}"])


async def load_doors(conn) -> list[dict]:
    """Bruz's numbered doors, in a stable order (independent of load order)."""
    rows = await conn.execute(
        text(
            "SELECT id, numero, coalesce(suffixe, '') AS suffixe, nom_voie, nom_commune, lon, lat "
            "FROM address WHERE code_insee = :c AND source = 'bal' AND numero IS NOT NULL "
            "AND numero < 99999 ORDER BY nom_voie, numero, suffixe"
        ),
        {"c": BRUZ},
    )
    return [dict(r._mapping) for r in rows]


def typed_cases(doors: list[dict], n: int = 600) -> list[Case]:
    """``n`` typed addresses with the expected door, deterministic for a given door list."""
    rng = random.Random(SEED)
    with_suffix = [d for d in doors if d["suffixe"]]
    plain = [d for d in doors if not d["suffixe"]]
    picked = rng.sample(with_suffix, min(90, len(with_suffix)))
    picked += rng.sample(plain, n - len(picked))
    rng.shuffle(picked)
    kinds = [
        "canonical",
        "lower_no_accents",
        "abbreviation",
        "typo",
        "wrong_postcode",
        "no_comma_caps",
        "comma_no_postcode",
        "postcode_first_abbrev",
    ]
    cases = []
    for i, d in enumerate(picked):
        kind = kinds[i % len(kinds)]
        num = _suffix(d["numero"], d["suffixe"], rng) if d["suffixe"] else str(d["numero"])
        street, city = d["nom_voie"], d["nom_commune"]
        if kind == "canonical":
            typed = f"{num} {street}, 35170 {city}"
        elif kind == "lower_no_accents":
            typed = strip_accents(f"{num} {street.replace('-', ' ')} 35170 {city}").lower()
        elif kind == "abbreviation":
            typed = f"{num} {_abbreviate(street, rng)}, {city}"
        elif kind == "typo":
            typed = f"{num}, {_typo(street, rng)} 35170 {city}"
        elif kind == "wrong_postcode":
            typed = f"{num} {street}, {rng.choice(['35000', '35137', '35200'])} {city}"
        elif kind == "no_comma_caps":
            typed = f"{num} {strip_accents(street)} {city}".upper()
        elif kind == "comma_no_postcode":
            typed = f"{num} {street.replace('-', ' ')}, {city.lower()}"
        else:
            typed = f"{num} {_abbreviate(strip_accents(street), rng)} 35170 {city.upper()}"
        if d["suffixe"]:
            kind = f"suffix+{kind}"
        cases.append(Case(typed, kind, d["id"], d["lon"], d["lat"], street))
    return cases


def street_only_cases(doors: list[dict], n: int = 40) -> list[Case]:
    """Addresses typed without a house number: the street must be found, not a door."""
    rng = random.Random(SEED + 1)
    streets = sorted({d["nom_voie"] for d in doors})
    return [
        Case(f"{s}, 35170 Bruz", "missing_number", None, None, None, s)
        for s in rng.sample(streets, min(n, len(streets)))
    ]


def not_loaded_cases(doors: list[dict], n: int = 30) -> list[Case]:
    """Doors that are NOT loaded: numbers past the end of real streets, and other départements."""
    rng = random.Random(SEED + 2)
    top: dict[str, int] = {}
    for d in doors:
        top[d["nom_voie"]] = max(top.get(d["nom_voie"], 0), d["numero"])
    streets = rng.sample(sorted(top), min(n, len(top)))
    out = [
        Case(f"{top[s] + 101} {s}, 35170 Bruz", "number_not_loaded", None, None, None, s)
        for s in streets
    ]
    elsewhere = [
        "10 rue de Rivoli, 75001 Paris",
        "3 place Bellecour, 69002 Lyon",
        "12 avenue Jean Jaurès, 94000 Créteil",
        "5 rue de la République, 13001 Marseille",
        "8 rue Nationale, 59000 Lille",
        "14 rue du Général Leclerc, 44000 Nantes",
        "2 allée des Acacias, 33000 Bordeaux",
        "1 rue des Acacias, 31000 Toulouse",
        "7 place de la Mairie, 29200 Brest",
        "20 rue Saint-Michel, 35000 Rennes",
    ]
    out += [Case(t, "other_commune", None, None, None, None) for t in elsewhere]
    return out
