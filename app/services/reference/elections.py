"""Imported elections and the sides (nuances, lists, candidates) each offers; sides by name.

An organiser names their side the way they know it: a nuance code (``ENS``), a party name
("Ensemble", "Rassemblement national"), a list's label ("Besoin d'Europe") or a candidate's name
("Bregeon"). ``resolve_side`` turns that into the tokens the ranking matches (nuance codes and
candidate labels), or refuses with the closest names that exist, or, when the name fits several
parties (two candidates called Dupont of different nuances, "Union" for UG, UDI, UD...), with the
names it could mean.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.errors import InvalidInput, NotFound
from app.i18n import _
from app.services.reference.nuances import LIST_PREFIX, NUANCES, normalise, nuance_name

_ELECTIONS = text(
    """
    SELECT e.id, e.name, e.loaded_at, count(r.district_code) AS districts,
           count(DISTINCT r.commune_code) AS communes,
           array_agg(DISTINCT r.commune_code ORDER BY r.commune_code)
               FILTER (WHERE r.commune_code IS NOT NULL) AS commune_codes,
           sum(r.inscrits) AS registered, sum(r.exprimes) AS cast_votes,
           (SELECT count(DISTINCT coalesce(c.nuance, c.label)) FROM election_candidate_result c
             WHERE c.election_id = e.id) AS sides
    FROM election e LEFT JOIN election_result r ON r.election_id = e.id
    GROUP BY e.id ORDER BY e.loaded_at DESC, e.id DESC
    """
)
_SIDES = text(
    """
    SELECT c.nuance, array_agg(DISTINCT c.label ORDER BY c.label) FILTER (WHERE c.label IS NOT NULL)
               AS labels,
           sum(c.voix) AS votes, count(DISTINCT c.district_code) AS districts,
           array_agg(DISTINCT r.commune_code ORDER BY r.commune_code)
               FILTER (WHERE r.commune_code IS NOT NULL) AS communes
    FROM election_candidate_result c
    LEFT JOIN election_result r ON r.election_id = c.election_id
                               AND r.district_code = c.district_code
    WHERE c.election_id = :e
    GROUP BY c.nuance, CASE WHEN c.nuance IS NULL THEN c.label END
    ORDER BY sum(c.voix) DESC NULLS LAST
    """
)
_CAST = text("SELECT sum(exprimes) FROM election_result WHERE election_id = :e")
_VOCABULARY = text(
    """
    SELECT DISTINCT upper(c.nuance) AS nuance, c.label
    FROM election_candidate_result c
    WHERE CAST(:e AS int) IS NULL OR c.election_id = CAST(:e AS int)
    """
)


async def list_elections(session: AsyncSession) -> list[dict[str, Any]]:
    """Every imported election: where it ran, how many districts, voters and sides."""
    out = []
    for r in await session.execute(_ELECTIONS):
        row = dict(r._mapping)
        row["commune_codes"] = row["commune_codes"] or []
        out.append(row)
    return out


async def _election(session: AsyncSession, election: str) -> Any:
    row = (
        await session.execute(
            text("SELECT id, name FROM election WHERE id::text = :e OR name = :e LIMIT 1"),
            {"e": election},
        )
    ).first()
    if row is None:
        raise NotFound(
            _(
                "No imported election is called or numbered {election!r}: "
                "GET /elections lists them."
            ).format(election=election),
            field="election",
        )
    return row


async def list_sides(session: AsyncSession, election: str) -> dict[str, Any]:
    """What one election offers: nuance code and name, list labels or candidates, votes, where."""
    el = await _election(session, election)
    cast = (await session.execute(_CAST, {"e": el.id})).scalar() or 0
    sides = []
    for r in await session.execute(_SIDES, {"e": el.id}):
        sides.append(
            {
                "code": r.nuance,
                "name": nuance_name(r.nuance),
                "labels": r.labels or [],
                "votes": r.votes,
                "share": round(100 * (r.votes or 0) / cast, 2) if cast else None,
                "districts": r.districts,
                "communes": r.communes or [],
            }
        )
    return {"election": {"id": el.id, "name": el.name}, "sides": sides}


@dataclass(frozen=True)
class _Entry:
    """One way of naming a side: what the user may type, and the tokens it stands for."""

    words: str  # normalised
    shown: str  # as shown in "did you mean"
    tokens: tuple[str, ...]
    party: str  # the political side it belongs to (two entries of one party are no ambiguity)


def _party(code: str) -> str:
    """A nuance's party: a list nuance is its candidates' one (``LENS`` -> ``ENS``)."""
    if code.startswith(LIST_PREFIX) and code[1:] in NUANCES:
        return code[1:]
    return code


async def _vocabulary(
    conn: AsyncConnection | AsyncSession, election_id: int | None
) -> list[_Entry]:
    rows = (await conn.execute(_VOCABULARY, {"e": election_id})).all()
    entries: list[_Entry] = []
    by_code: dict[str, list[str]] = {}
    parties: dict[str, set[str]] = {}  # label -> the parties it ran for
    for r in rows:
        if r.nuance:
            by_code.setdefault(r.nuance, [])
        if r.label:
            parties.setdefault(r.label, set()).add(_party(r.nuance) if r.nuance else r.label)
    for label, of in parties.items():
        party = next(iter(of)) if len(of) == 1 else label
        codes = sorted({c for c in of if c != label})
        shown = f"{label} ({', '.join(codes)})" if codes else label
        entries.append(_Entry(normalise(label), shown, (label.upper(),), party))
        for part in normalise(label).split():  # a candidate's surname, a list's key word
            if len(part) >= 4:
                entries.append(_Entry(part, shown, (label.upper(),), party))
    for code in by_code:
        entries.append(_Entry(normalise(code), code, (code,), _party(code)))
        name = nuance_name(code)
        if name:
            entries.append(_Entry(normalise(name), f"{name} ({code})", (code,), _party(code)))
    return entries


def _matches(part: str, entries: list[_Entry]) -> list[_Entry]:
    """The names one typed name stands for: an exact code or label, else every name holding its
    words."""
    exact = [e for e in entries if e.words == part]
    if exact:
        return exact
    words = part.split()
    if not words or len(part) < 3:
        return []
    return [
        e
        for e in entries
        if " " in e.words or len(e.words) > 3  # whole names, not lone codes
        if all(w in e.words.split() for w in words)
    ]


async def resolve_side(
    conn: AsyncConnection | AsyncSession, side: str, *, election_id: int | None = None
) -> list[str]:
    """The ranking's side tokens for what the organiser typed; 422 with close matches if none.

    Several sides may be given, separated by commas (an alliance: ``"UG, FI"``).
    """
    entries = await _vocabulary(conn, election_id)
    tokens: list[str] = []
    for raw in [p for p in side.replace(";", ",").replace("|", ",").split(",") if p.strip()]:
        part = normalise(raw)
        matched = _matches(part, entries)
        if len({e.party for e in matched}) > 1:
            meant = sorted({e.shown for e in matched})
            raise InvalidInput(
                _(
                    "{side!r} fits several parties: {names}. Give the code or the full name of "
                    "the one you mean (separate several with commas for an alliance)."
                ).format(side=raw.strip(), names=", ".join(meant[:8])),
                field="side",
                extra={"close_matches": meant[:8]},
            )
        found = {t for e in matched for t in e.tokens}
        if not found:
            names = sorted({e.shown for e in entries})
            close = difflib.get_close_matches(part, [normalise(n) for n in names], n=5, cutoff=0.5)
            shown = [n for n in names if normalise(n) in close][:5]
            raise InvalidInput(
                _(
                    "No party, list, nuance or candidate called {side!r} in the imported "
                    "results. Closest names: {close}. GET /elections/{{id}}/sides lists them."
                ).format(side=raw.strip(), close=", ".join(shown) or _("none")),
                field="side",
                extra={"close_matches": shown},
            )
        tokens += sorted(found - set(tokens))
    if not tokens:
        raise InvalidInput(
            _("Name a side: a party, a list, a nuance or a candidate."), field="side"
        )
    return tokens
