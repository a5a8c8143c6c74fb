"""A campaign's territory: a list of communes, legislative constituencies, départements, or the
whole country; and the districts it covers.

The districts are kept in ``campaign_district`` by ``porte_refresh_territory()`` (migration
0019: the rule lives there, in one place). Ranking, district tiles, exports, OGC collections,
progress and supporter aggregates join that table, so a municipal campaign on a national database
sees only its commune. The list goes stale when districts or constituencies are imported
(``reference_state`` counters): importers refresh every campaign's list at the end
(``refresh_all``), and ``ensure`` refreshes one campaign's list when it finds it stale.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.context import CampaignContext
from app.errors import InvalidInput
from app.i18n import _, number
from app.services.access import audit
from app.services.reference.codes import normalise_constituency

Conn = AsyncConnection | AsyncSession
KINDS = ("country", "departement", "constituency", "communes")
MAX_CODES = 5000

_STATE = text(
    "SELECT t.kind, t.codes, t.version, t.refreshed_for, r.mapped, "
    "r.districts || ':' || r.constituencies AS reference "
    "FROM campaign_territory t CROSS JOIN reference_state r WHERE t.campaign_id = :c"
)
_REFRESH = text("SELECT porte_refresh_territory(:c)")
_MAP_CONSTITUENCIES = text("SELECT porte_refresh_constituencies()")
_VERSION = text("SELECT version FROM campaign_territory WHERE campaign_id = :c")


async def ensure(conn: Conn, campaign_id: uuid.UUID) -> int:
    """Refresh the campaign's districts if districts or constituencies changed; its version."""
    row = (await conn.execute(_STATE, {"c": campaign_id})).first()
    if row is None:
        return 0
    if row.refreshed_for == row.reference:
        return row.version
    if row.kind == "constituency" and row.mapped != row.reference:
        await conn.execute(_MAP_CONSTITUENCIES)
    await conn.execute(_REFRESH, {"c": campaign_id})
    return (await conn.execute(_VERSION, {"c": campaign_id})).scalar_one()


async def ensure_kind(conn: Conn, campaign_id: uuid.UUID) -> str:
    """The territory's kind, its district list refreshed first if stale (``ensure``)."""
    await ensure(conn, campaign_id)
    return (
        await conn.execute(
            text("SELECT kind FROM campaign_territory WHERE campaign_id = :c"), {"c": campaign_id}
        )
    ).scalar_one()


async def outside(conn: Conn, campaign_id: uuid.UUID, codes: list[str]) -> list[str]:
    """The districts among ``codes`` that are not in the campaign's territory."""
    await ensure(conn, campaign_id)
    inside = set(
        (
            await conn.execute(
                text(
                    "SELECT district_code FROM campaign_district WHERE campaign_id = :c "
                    "AND district_code = ANY (:codes)"
                ),
                {"c": campaign_id, "codes": codes},
            )
        ).scalars()
    )
    return [c for c in codes if c not in inside]


async def refresh_all(conn: Conn) -> int:
    """After an import (as the owner): map constituencies, refresh every campaign's districts."""
    await conn.execute(_MAP_CONSTITUENCIES)
    rows = await conn.execute(
        text(
            "SELECT porte_refresh_territory(t.campaign_id) FROM campaign_territory t "
            "CROSS JOIN reference_state r WHERE t.refreshed_for <> r.districts || ':' || "
            "r.constituencies"
        )
    )
    return len(rows.all())


@dataclass(frozen=True)
class Territory:
    """What a campaign covers."""

    kind: str
    codes: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "codes": list(self.codes)}


def _clean(kind: str, codes: list[str] | None) -> list[str]:
    """Codes as stored (trimmed, upper-cased, constituencies as ``92-13``); 422 when malformed."""
    if kind not in KINDS:
        raise InvalidInput(
            _("Unknown territory kind {kind!r}: choose one of {kinds}.").format(
                kind=kind, kinds=", ".join(KINDS)
            ),
            field="kind",
        )
    codes = [str(c).strip().upper() for c in (codes or []) if str(c).strip()]
    if kind == "country":
        if codes:
            raise InvalidInput(
                _("The whole country takes no codes: leave codes empty."), field="codes"
            )
        return []
    if not codes:
        raise InvalidInput(
            _("Give at least one code for a territory of kind {kind}.").format(kind=kind),
            field="codes",
        )
    if len(codes) > MAX_CODES:
        raise InvalidInput(_("At most {n} codes.").format(n=MAX_CODES), field="codes")
    if kind == "constituency":
        bad = [c for c in codes if normalise_constituency(c) is None]
        if bad:
            raise InvalidInput(
                _("Not a constituency code (expected like 92-13): {codes}.").format(
                    codes=", ".join(bad)
                ),
                field="codes",
            )
        codes = [normalise_constituency(c) or c for c in codes]
    elif kind == "communes":
        bad = [c for c in codes if not re.fullmatch(r"[0-9][0-9AB][0-9]{3}", c)]
        if bad:
            raise InvalidInput(
                _("Not an INSEE commune code (5 characters, like 92002): {codes}.").format(
                    codes=", ".join(bad)
                ),
                field="codes",
            )
    return sorted(set(codes))


_KNOWN = {
    "communes": "SELECT DISTINCT commune_code FROM district WHERE commune_code = ANY (:codes)",
    "departement": "SELECT DISTINCT porte_departement(commune_code) FROM district "
    "WHERE porte_departement(commune_code) = ANY (:codes)",
    "constituency": "SELECT code FROM constituency WHERE code = ANY (:codes)",
}


async def _unknown(conn: Conn, kind: str, codes: list[str]) -> InvalidInput:
    listed = ", ".join(codes)
    if kind == "communes":
        # Name them, and say what is loaded for them: doors without contours is the usual case.
        found = {
            r.code: r
            for r in await conn.execute(_COMMUNES_LOADED, {"codes": codes})
            if r.name or r.doors or r.results
        }
        named = [{"code": c, "name": found[c].name if c in found else None} for c in codes]
        msg = _(
            "No polling-station or IRIS contour is loaded for these communes: {codes}. Import "
            "their polling-station contours first (porte import districts FILE, docs/data.md), "
            "then set the territory."
        ).format(codes=_named(named))
        with_doors = [c for c in codes if c in found and found[c].doors]
        if with_doors:
            msg += " " + _(
                "Their doors are loaded ({doors} doors): only the contours are missing."
            ).format(doors=number(sum(found[c].doors for c in with_doors)))
        return InvalidInput(msg, field="codes", extra={"unknown": codes})
    elif kind == "departement":
        msg = _(
            "Unknown départements (no district of theirs is loaded): {codes}. Import their "
            "polling-station contours first (porte import districts FILE, docs/data.md)."
        )
    else:
        msg = _(
            "Unknown constituencies (import the constituency file first: porte import "
            "constituencies FILE): {codes}."
        )
    return InvalidInput(msg.format(codes=listed), field="codes", extra={"unknown": codes})


async def validate(conn: Conn, kind: str, codes: list[str] | None) -> Territory:
    """The territory with its codes checked against the loaded data; 422 naming unknown codes."""
    clean = _clean(kind, codes)
    if kind != "country":
        known = set((await conn.execute(text(_KNOWN[kind]), {"codes": clean})).scalars())
        unknown = [c for c in clean if c not in known]
        if unknown:
            raise await _unknown(conn, kind, unknown)
    return Territory(kind, clean)


async def describe(conn: Conn, campaign_id: uuid.UUID) -> dict[str, Any]:
    """The territory with the number of districts and communes it covers."""
    await ensure(conn, campaign_id)
    row = (
        await conn.execute(
            text(
                "SELECT t.kind, t.codes, t.updated_at, t.version, count(cd.district_code) AS n, "
                "count(DISTINCT d.commune_code) AS communes FROM campaign_territory t "
                "LEFT JOIN campaign_district cd ON cd.campaign_id = t.campaign_id "
                "LEFT JOIN district d ON d.code = cd.district_code WHERE t.campaign_id = :c "
                "GROUP BY t.kind, t.codes, t.updated_at, t.version"
            ),
            {"c": campaign_id},
        )
    ).one()
    return {
        "kind": row.kind,
        "codes": list(row.codes),
        "districts": row.n,
        "communes": row.communes,
        "updated_at": row.updated_at,
    }


async def save(
    conn: Conn, campaign_id: uuid.UUID, user_id: uuid.UUID | None, territory: Territory
) -> int:
    """Store the territory and refresh its districts now; how many districts it covers."""
    if territory.kind == "constituency":
        await conn.execute(_MAP_CONSTITUENCIES)
    await conn.execute(
        text(
            "UPDATE campaign_territory SET kind = :k, codes = :codes, updated_at = now(), "
            "updated_by = :u WHERE campaign_id = :c"
        ),
        {"k": territory.kind, "codes": territory.codes, "u": user_id, "c": campaign_id},
    )
    return (await conn.execute(_REFRESH, {"c": campaign_id})).scalar_one()


async def set_territory(ctx: CampaignContext, kind: str, codes: list[str] | None) -> dict:
    """PUT /territory: check, store, refresh the districts, audit the change (admins)."""
    before = (
        await ctx.session.execute(
            text("SELECT kind, codes FROM campaign_territory WHERE campaign_id = :c FOR UPDATE"),
            {"c": ctx.campaign_id},
        )
    ).one()
    territory = await validate(ctx.session, kind, codes)
    districts = await save(ctx.session, ctx.campaign_id, ctx.user_id, territory)
    await audit.record(
        ctx,
        action="access.campaign.territory",
        object=str(ctx.campaign_id),
        rows=districts,
        details={
            "from": {"kind": before.kind, "codes": list(before.codes)},
            "to": territory.as_dict(),
        },
    )
    return await describe(ctx.session, ctx.campaign_id)


# ---------------------------------------------------------------- an empty territory, explained
MAX_NAMED = 20  # communes named in an explanation (the rest are counted)
_ANY_DISTRICT = text("SELECT EXISTS (SELECT 1 FROM district)")
_TERRITORY = text(
    "SELECT t.kind, t.codes, (SELECT count(*) FROM campaign_district cd "
    "WHERE cd.campaign_id = t.campaign_id) AS districts "
    "FROM campaign_territory t WHERE t.campaign_id = :c"
)
# The communes a constituency file names (directly, or through its polling stations' codes).
_CONSTITUENCY_COMMUNES = text(
    "SELECT DISTINCT CASE WHEN p.level = 'commune' THEN p.code ELSE split_part(p.code, '_', 1) "
    "END FROM constituency_part p WHERE p.constituency_code = ANY (:codes) ORDER BY 1"
)
# Communes of a département seen in any loaded data (doors, results).
_DEPARTEMENT_COMMUNES = text(
    "SELECT code FROM (SELECT DISTINCT code_insee AS code FROM geocode_commune "
    "UNION SELECT DISTINCT commune_code FROM election_result WHERE commune_code IS NOT NULL) x "
    "WHERE porte_departement(code) = ANY (:codes) ORDER BY 1"
)
# What is loaded for each commune besides contours: its name and doors (geocoder's table of
# communes), whether results name it.
_COMMUNES_LOADED = text(
    """
    SELECT c.code,
           (SELECT g.nom_commune FROM geocode_commune g WHERE g.code_insee = c.code
            ORDER BY g.n DESC LIMIT 1) AS name,
           (SELECT sum(g.n) FROM geocode_commune g WHERE g.code_insee = c.code)::bigint AS doors,
           EXISTS (SELECT 1 FROM election_result r WHERE r.commune_code = c.code) AS results,
           EXISTS (SELECT 1 FROM district d WHERE d.commune_code = c.code) AS contours
    FROM unnest(CAST(:codes AS text[])) AS c(code)
    ORDER BY c.code
    """
)


def _named(communes: list[dict[str, Any]]) -> str:
    shown = [f"{c['code']} ({c['name']})" if c["name"] else c["code"] for c in communes]
    if len(shown) > MAX_NAMED:
        more = len(shown) - MAX_NAMED
        return _("{names} and {n} more").format(names=", ".join(shown[:MAX_NAMED]), n=more)
    return ", ".join(shown)


async def why_empty(conn: Conn, campaign_id: uuid.UUID) -> dict[str, Any] | None:
    """Why the campaign's territory holds no district, and what to do; None when it holds some.

    ``reason``: ``no_districts`` (no contour loaded on this server at all) or ``no_contours``
    (none for the territory's communes, named in ``communes`` with what is loaded for them:
    doors, election results), ``detail`` and ``action`` in words (the request's language)."""
    await ensure(conn, campaign_id)
    row = (await conn.execute(_TERRITORY, {"c": campaign_id})).first()
    if row is None or row.districts:
        return None
    action = _(
        "Import the polling-station contours of the territory's communes with "
        "porte import districts FILE (the contours published on data.gouv.fr, see docs/data.md); "
        "the ranking, the map and the exports follow at the next request. Or change the "
        "territory: PUT /campaigns/{cid}/territory."
    ).format(cid=campaign_id)
    if not (await conn.execute(_ANY_DISTRICT)).scalar_one():
        return {
            "reason": "no_districts",
            "detail": _(
                "No polling-station or IRIS contour is loaded on this server yet: there is no "
                "district to rank or to draw."
            ),
            "action": action,
            "communes": [],
        }
    codes: list[str] = []
    if row.kind == "communes":
        codes = list(row.codes)
    elif row.kind == "constituency":
        codes = list((await conn.execute(_CONSTITUENCY_COMMUNES, {"codes": row.codes})).scalars())
    elif row.kind == "departement":
        codes = list((await conn.execute(_DEPARTEMENT_COMMUNES, {"codes": row.codes})).scalars())
    communes = [
        {
            "code": r.code,
            "name": r.name,
            "doors": r.doors or 0,
            "results": r.results,
            "contours": r.contours,
        }
        for r in await conn.execute(_COMMUNES_LOADED, {"codes": codes})
    ]
    missing = [c for c in communes if not c["contours"]]
    if missing:
        detail = _("No polling-station contours are loaded for {communes}.").format(
            communes=_named(missing)
        )
        with_doors = [c for c in missing if c["doors"]]
        if with_doors:
            detail += " " + _(
                "Their doors are loaded ({doors} doors): only the contours are missing."
            ).format(doors=number(sum(c["doors"] for c in with_doors)))
    elif row.kind == "constituency":
        detail = _(
            "No loaded polling station lies in the constituency {codes}: the constituency file "
            "names none of its communes or polling stations, and no loaded contour falls in its "
            "outline."
        ).format(codes=", ".join(row.codes))
    else:
        detail = _(
            "No loaded polling station or IRIS lies in the territory {kind} {codes}."
        ).format(kind=row.kind, codes=", ".join(row.codes))
    return {
        "reason": "no_contours",
        "detail": detail,
        "action": action,
        "communes": communes,
    }
