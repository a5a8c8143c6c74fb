"""Local geocoder over the loaded doors (``address``, from BAN/BAL files). Never an outside service.

A typed address is parsed here (number, bis/ter suffix, street, postcode, commune); the rest runs
in PostgreSQL as ONE set-based query per batch (``app/sql/geocode.sql``): the commune by its name
(or a former commune's, or "Paris" for its arrondissements), its postcode, a postcode one digit
away checked against the name, a misspelt name within the postal département or the country;
then the street by its normalised name (``porte_norm_name``: case, accents, hyphens,
abbreviations, articles), by the name without its type, or by trigram similarity among the
commune's streets; then the door by its number, or a point interpolated between the neighbours
on the same side of the street. When the commune cannot be told apart, no door is given.

Levels: ``housenumber`` (a loaded door), ``interpolated`` (between two doors of the same side),
``street``, ``commune``, ``none``; each with a score in [0, 1] and, below housenumber, a reason.
"""

from __future__ import annotations

import re
import time
import unicodedata
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from asyncpg.exceptions import InvalidCachedStatementError
from sqlalchemy import text

from app.db import CUSTOM_PLAN_FROM
from app.i18n import _

if TYPE_CHECKING:
    from app.db import Executor

LEVELS = ("housenumber", "interpolated", "street", "commune", "none")
BATCH = 1000
_SQL_TEXT = resources.files("app.sql").joinpath("geocode.sql").read_text("utf-8")
_SQL = text(_SQL_TEXT)
# one address: the binds' sizes hidden from the planner (see the "arrays" CTE)
_SQL_ONE = text(_SQL_TEXT.replace("\narrays AS (\n", "\narrays AS MATERIALIZED (\n", 1))
assert _SQL_ONE.text != _SQL_TEXT
# the same for the driver (asyncpg: $1, $2…), for one address at a time (see _fetch_small)
_BIND = re.compile(r"(?<!:):(\w+)\b")
_ONE_NAMES = list(dict.fromkeys(_BIND.findall(_SQL_ONE.text)))
_SQL_ONE_DRIVER = _BIND.sub(lambda m: f"${_ONE_NAMES.index(m.group(1)) + 1}", _SQL_ONE.text)
_KNOWN_CITIES = text(
    "SELECT c FROM unnest(CAST(:c AS text[])) AS c"
    " WHERE EXISTS (SELECT 1 FROM geocode_commune g WHERE g.commune_norm = c)"
    " OR EXISTS (SELECT 1 FROM geocode_commune g WHERE g.city_norm = c)"
    " OR EXISTS (SELECT 1 FROM geocode_commune g WHERE g.ancienne_norm = c AND c <> '')"
)

# 5 digits (or 2 + 3), else 4 digits (a postcode with a digit missing, "7820" for 78290)
_POSTCODE = re.compile(r"(?<!\d)(\d{2})\s?(\d{3})(?!\d)|(?<![\w/-])(\d{4})(?![\w/-])")
# a 4-digit number after a day and month is a year ("rue du 8 mai 1945"), not a postcode
_DATE_BEFORE = re.compile(
    r"(janvier|fevrier|février|mars|avril|mai|juin|juillet|aout|août|septembre|octobre|"
    r"novembre|decembre|décembre)\s*$",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"^\s*(?:n[°o]\s*)?(\d{1,5})(?:\s*[-/àa]\s*\d{1,5}(?!\d))?"  # 12, 12-14, n° 12
    r"(?:\s*(bis|ter|quater|quinquies)(?![a-z])|([a-zA-Z])(?![a-zA-Z])"
    r"|\s+([a-qs-zA-QS-Z])(?=[\s,.]|$))?"
    r"[\s,.]*(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_CEDEX = re.compile(r"\s+cedex(\s+\d{1,3})?\s*$", re.IGNORECASE)
_SUFFIX_ALT = {"b": "bis", "bis": "b", "t": "ter", "ter": "t", "q": "quater", "quater": "q"}


# Same rules as the SQL function porte_norm_name (migration 0005), which builds the street index;
# tests/test_geocoder.py checks that both agree on every loaded street and commune name.
_ABBR = {
    **dict.fromkeys(("bd", "bld", "boul", "bvd"), "boulevard"),
    **dict.fromkeys(("av", "ave", "aven"), "avenue"),
    **dict.fromkeys(("pl", "plc"), "place"),
    **dict.fromkeys(("chem", "che", "ch", "chm"), "chemin"),
    **dict.fromkeys(("all", "al", "ale"), "allee"),
    **dict.fromkeys(("imp", "impa"), "impasse"),
    "rte": "route",
    "sq": "square",
    "crs": "cours",
    **dict.fromkeys(("qu", "qua"), "quai"),
    **dict.fromkeys(("fg", "fbg"), "faubourg"),
    **dict.fromkeys(("res", "resid"), "residence"),
    **dict.fromkeys(("lot", "lotiss"), "lotissement"),
    "ham": "hameau",
    **dict.fromkeys(("pas", "pass"), "passage"),
    "prom": "promenade",
    "rpt": "rond point",
    "st": "saint",
    "ste": "sainte",
    **dict.fromkeys(("gal", "gen", "gl"), "general"),
    **dict.fromkeys(("mal", "marech"), "marechal"),
    **dict.fromkeys(("pdt", "pres"), "president"),
    **dict.fromkeys(("dr", "doct"), "docteur"),
    "prof": "professeur",
    **dict.fromkeys(("cdt", "cmdt"), "commandant"),
    "lt": "lieutenant",
    "cne": "capitaine",
    "mgr": "monseigneur",
}
_STOP = frozenset(("de", "du", "des", "la", "le", "les", "l", "d", "au", "aux", "et"))
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


@lru_cache(maxsize=1 << 16)
def norm_name(value: str | None) -> str:
    """Comparison key of a street or commune name: 'Allée de la Noë' -> 'allee noe'."""
    if not value:
        return ""
    s = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    toks = re.sub(r"[^a-z0-9]+", " ", s).split()
    out = []
    for i, tok in enumerate(toks, 1):
        w = "rue" if i == 1 and tok in ("r", "ru") else _ABBR.get(tok, tok)
        if w not in _STOP:
            out.append(w)
    return " ".join(out)


# Street types that may be left out when typing ("12 Maurice Ravel" for "Rue Maurice Ravel"): the
# same list as porte_street_core (migration 0018); tests/test_geocoder.py checks both agree.
STREET_TYPES = frozenset((
    "rue", "avenue", "boulevard", "place", "chemin", "allee", "impasse", "route", "square",
    "cours", "quai", "faubourg", "residence", "lotissement", "hameau", "passage", "promenade",
    "sentier", "ruelle", "venelle", "voie", "villa", "cite", "clos", "domaine", "esplanade",
    "parvis", "mail", "traverse", "montee", "cour", "parc", "carrefour", "rampe", "levee",
    "digue", "sente", "dreve", "za", "zi", "zac",
))  # fmt: skip
_CITY_WORDS = re.compile(r"\b(arrondissements?|arrondt|arrdt|arrt|arr|cedex)\b")
_ORDINAL = re.compile(r"\b0*([0-9]+)(er|ere|eme|ieme|em|e|nd|nde)?\b")


@lru_cache(maxsize=1 << 14)
def norm_city(value: str | None) -> str:
    """Comparison key of a commune name (= porte_norm_city): 'Paris 1er Arrondissement',
    'PARIS 01' -> 'paris 1'; 'Le Blanc-Mesnil' -> 'blanc mesnil'; 'St-Malo' -> 'saint malo'."""
    s = _CITY_WORDS.sub(" ", norm_name(value))
    s = _ORDINAL.sub(r"\1", s)
    return re.sub(" +", " ", s).strip()


def street_core(norm: str) -> str:
    """The normalised street name without its type (= porte_street_core): 'rue maurice ravel'
    -> 'maurice ravel'; a name that is only a type stays."""
    if norm.startswith("rond point "):
        return norm[11:]
    head, sep, rest = norm.partition(" ")
    return rest if sep and head in STREET_TYPES else norm


@dataclass
class ParsedAddress:
    """The parts of a typed address."""

    housenumber: int | None = None
    suffix: str | None = None
    street: str = ""
    postcode: str | None = None
    city: str | None = None


@dataclass
class GeocodeResult:
    """Where an address is, how sure we are, and why when it is not a door."""

    level: str
    score: float
    lon: float | None = None
    lat: float | None = None
    address_id: int | None = None
    code_insee: str | None = None
    commune: str | None = None
    street: str | None = None
    housenumber: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (CSV/JSON)."""
        return asdict(self)


def parse_address(
    line: str | None = None,
    *,
    housenumber: str | None = None,
    street: str | None = None,
    postcode: str | None = None,
    city: str | None = None,
) -> ParsedAddress:
    """Split a one-line address (or given parts) into number, suffix, street, postcode, city."""
    p = ParsedAddress(postcode=(postcode or "").strip() or None, city=(city or "").strip() or None)
    if line is None:
        line = " ".join(x for x in (housenumber, street) if x)
    s = re.sub(r"\s+", " ", line.replace("\n", ", ")).strip(" ,")
    if p.postcode is None:
        matches = [m for m in _POSTCODE.finditer(s) if _is_postcode(s, m)]
        five = [m for m in matches if m.group(1)]
        if matches:
            m = (five or matches)[-1]
            p.postcode = m.group(1) + m.group(2) if m.group(1) else m.group(3)
            before, after = s[: m.start()].strip(" ,"), s[m.end() :].strip(" ,")
            if after and p.city is None:
                p.city, s = after, before
            else:
                s = before
    if p.city is None and "," in s:
        head, _, tail = s.rpartition(",")
        tail = tail.strip()
        if tail and not tail[0].isdigit() and head.strip():
            p.city, s = tail, head
    # "Résidence X, 12 rue Y": keep the part that starts with a number
    parts = [x.strip() for x in s.split(",") if x.strip()]
    first = next((i for i, x in enumerate(parts) if x[:1].isdigit()), None)
    s = " ".join(parts[first:]) if first is not None else (parts[-1] if parts else "")
    m = _NUMBER.match(s)
    if m:
        p.housenumber = int(m.group(1))
        suf = (m.group(2) or m.group(3) or m.group(4) or "").lower()
        p.suffix = suf or None
        s = m.group(5)
    p.street = s.strip(" ,.")
    if p.city:
        p.city = _CEDEX.sub("", p.city).strip(" ,") or None
    return p


def _is_postcode(s: str, m: re.Match) -> bool:
    """Is this match a postcode? Not a number at the very start (a house number); a 4-digit one
    only before a commune name and not after a day and month (a year: "rue du 8 mai 1945")."""
    if m.start() == 0 and len(s) != m.end():
        return False
    if m.group(3) is None:
        return True
    after = s[m.end() :].strip(" ,")
    return bool(after) and not after[0].isdigit() and not _DATE_BEFORE.search(s[: m.start()])


async def geocode_parsed(conn: Executor, items: Sequence[ParsedAddress]) -> list[GeocodeResult]:
    """Geocode parsed addresses, one SQL pass per batch of ``BATCH``; results in input order.
    An address typed the same way twice in a batch (a household) is looked up once."""
    out: list[GeocodeResult] = []
    for start in range(0, len(items), BATCH):
        batch = list(items[start : start + BATCH])
        await _split_cities(conn, batch)
        first: dict[tuple, int] = {}
        uniq: list[ParsedAddress] = []
        where: list[int] = []
        for p in batch:
            key = _same_address(p)
            if key not in first:
                first[key] = len(uniq)
                uniq.append(p)
            where.append(first[key])
        res = await _geocode_batch(conn, uniq)
        out.extend(replace(res[j]) for j in where)
    return out


def _same_address(p: ParsedAddress) -> tuple:
    return (p.housenumber, p.suffix, p.street, p.postcode, p.city)


async def _geocode_batch(conn: Executor, batch: list[ParsedAddress]) -> list[GeocodeResult]:
    binds = _binds(batch)
    if len(batch) < CUSTOM_PLAN_FROM:
        # a few addresses: PostgreSQL's generic plan, after five runs (see _SQL_ONE)
        binds["plan_mode"] = None
        rows = await _fetch_small(conn, binds)
    else:
        # planned for the batch's size; the statement restores the setting itself
        binds["plan_mode"] = (await conn.execute(_CUSTOM_PLANS)).one()[0]
        rows = (await conn.execute(_SQL, binds)).mappings().all()
    return [_result(p, r) for p, r in zip(batch, rows, strict=True)]


async def geocode(conn: Executor, lines: Iterable[str]) -> list[GeocodeResult]:
    """Geocode one-line addresses (``conn``: an AsyncSession or AsyncConnection)."""
    return await geocode_parsed(conn, [parse_address(x) for x in lines])


async def _fetch_small(conn: Any, binds: dict[str, Any]) -> Sequence[Any]:
    """A few addresses (one at a time: the form, a supporter's edit) straight through the
    driver's prepared statement on the same connection and transaction, without SQLAlchemy's
    work per statement (≈0.1 ms of client CPU a query on a quiet machine, more under load)."""
    session_conn = await conn.connection() if hasattr(conn, "get_bind") else conn
    driver = getattr(await session_conn.get_raw_connection(), "driver_connection", None)
    if driver is None or not hasattr(driver, "fetch"):  # another driver: through SQLAlchemy
        return (await conn.execute(_SQL_ONE, binds)).mappings().all()
    args = [binds[k] for k in _ONE_NAMES]
    stmt = _PREPARED.get(driver)
    if stmt is None:  # once per connection; PostgreSQL keeps a generic plan after five runs
        stmt = _PREPARED[driver] = await driver.prepare(_SQL_ONE_DRIVER)
    try:
        return await stmt.fetch(*args)
    except InvalidCachedStatementError:  # the tables changed under it (a migration)
        del _PREPARED[driver]  # prepared again next time
        if driver.is_in_transaction():  # the transaction is aborted: the caller's to retry
            raise
        return await _fetch_small(conn, binds)


_PREPARED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


_CUSTOM_PLANS = text(
    "SELECT current_setting('plan_cache_mode'),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)


def _binds(batch: Sequence[ParsedAddress]) -> dict[str, list]:
    streets = [norm_name(p.street) for p in batch]
    cities = [norm_city(p.city) for p in batch]
    return {
        "idx": list(range(len(batch))),
        "num": [p.housenumber for p in batch],
        "suf": [p.suffix for p in batch],
        "suf_alt": [_SUFFIX_ALT.get(p.suffix or "") for p in batch],
        "street": streets,
        "core": [street_core(x) for x in streets],
        "postcode": [p.postcode for p in batch],
        "city": cities,
        "dept": [p.postcode[:2] if p.postcode and len(p.postcode) >= 4 else None for p in batch],
    }


async def _split_cities(conn: Any, batch: list[ParsedAddress]) -> None:
    """No commune after a comma or a postcode ("12 rue X Bruz", "12 rue X Bruz 35170"): find a
    loaded commune's name at the end of the street (one query for the batch)."""
    todo = [p for p in batch if p.city is None and p.street]
    if not todo:
        return
    cands: dict[int, list[tuple[str, str]]] = {}
    for i, p in enumerate(todo):
        words = p.street.split()
        tails = (" ".join(words[-k:]) for k in range(min(5, len(words) - 1), 0, -1))
        cands[i] = [(t, norm_city(t)) for t in tails]
    allc = sorted({key for v in cands.values() for _t, key in v if key})
    known = set((await conn.execute(_KNOWN_CITIES, {"c": allc})).scalars().all()) if allc else set()
    for i, p in enumerate(todo):
        for tail, key in cands[i]:  # longest first
            rest = p.street[: len(p.street) - len(tail)].strip(" ,")
            # "route de Rennes" with no commune: the street keeps its name
            if key in known and street_core(norm_name(rest)) not in STREET_TYPES | {""}:
                p.city, p.street = tail, rest
                break


def _dept(postcode: str | None) -> str | None:
    if not postcode:
        return None
    if postcode.startswith("20"):
        return "2A/2B"
    return postcode[:3] if postcode.startswith("97") else postcode[:2]


def _result(p: ParsedAddress, r: Any) -> GeocodeResult:
    level = r["level"]
    num = None
    if r["numero"] is not None:
        num = f"{r['numero']}{(' ' + r['suffixe']) if r['suffixe'] else ''}"
    res = GeocodeResult(
        level=level,
        score=float(r["score"]),
        lon=r["lon"],
        lat=r["lat"],
        address_id=r["address_id"],
        code_insee=r["code_insee"],
        commune=r["nom_commune"],
        street=r["nom_voie"],
        housenumber=num,
    )
    if level == "none":
        # the reason is stored next to the supporter unencrypted: no part of the address in it
        # beyond the département
        dept = _dept(p.postcode)
        where = _(" (département {dept})").format(dept=dept) if dept else ""
        if not (p.postcode or p.city):
            res.reason = _("no postcode and no commune recognised in the address: add them")
        elif r["ambiguous"] or (r["n_cities"] or 0) > 1:
            res.reason = _(
                "several communes match the commune and postcode given{where} and the street "
                "does not tell them apart: check the commune name and the postcode, or place "
                "the supporter on the map by hand."
            ).format(where=where)
        elif r["candidates"]:
            res.reason = _(
                "the street was not found in the commune closest to the commune and postcode "
                "given{where}, and that commune is not certain (misspelt, or a postcode that "
                "does not agree): its doors may not be loaded. Check the address, or place the "
                "supporter on the map by hand."
            ).format(where=where)
        else:
            res.reason = _(
                "no doors are loaded for this commune{where}: the address is outside the loaded "
                "address files. Import the BAN file of that département, or place the supporter "
                "on the map by hand."
            ).format(where=where)
    elif level == "commune":
        if r["no_street"]:
            res.reason = _("no street given: add the street to place the supporter at a door")
        elif r["synthetic_doors"]:
            res.reason = _(
                "street not found: the doors loaded for this commune are SYNTHETIC (generated "
                "for the demo, not its real streets). Import the commune's BAN file "
                "(`porte import addresses`) to place supporters at their doors."
            )
        else:
            res.reason = _(
                "street not found in this commune (check the spelling, or pick the door by hand)"
            )
    elif level == "street":
        res.reason = (
            _("no house number given: pick the door among the street's doors")
            if r["no_number"]
            else _(
                "this number is not among the loaded doors of the street and cannot be "
                "interpolated between two neighbours on the same side"
            )
        )
    elif level == "interpolated":
        res.reason = _("number not loaded: position interpolated between same-side neighbours")
    return res


def throughput(n: int, seconds: float) -> str:
    """'1234 addresses in 0.8 s (1543/s)' for progress lines."""
    rate = n / seconds if seconds > 0 else float("inf")
    return f"{n} addresses in {seconds:.1f} s ({rate:.0f}/s)"


async def geocode_timed(conn: Executor, lines: Sequence[str]) -> tuple[list[GeocodeResult], float]:
    """Geocode and return the elapsed seconds (benchmarks, CLI)."""
    t0 = time.perf_counter()
    res = await geocode(conn, lines)
    return res, time.perf_counter() - t0
