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
from app.i18n import _
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


def _unknown(kind: str, codes: list[str]) -> InvalidInput:
    listed = ", ".join(codes)
    if kind == "communes":
        msg = _("Unknown communes (no polling station or IRIS of theirs is loaded): {codes}.")
    elif kind == "departement":
        msg = _("Unknown départements (no district of theirs is loaded): {codes}.")
    else:
        msg = _(
            "Unknown constituencies (import the constituency file first: porte import "
            "constituencies FILE): {codes}."
        )
    return InvalidInput(msg.format(codes=listed), field="codes")


async def validate(conn: Conn, kind: str, codes: list[str] | None) -> Territory:
    """The territory with its codes checked against the loaded data; 422 naming unknown codes."""
    clean = _clean(kind, codes)
    if kind != "country":
        known = set((await conn.execute(text(_KNOWN[kind]), {"codes": clean})).scalars())
        unknown = [c for c in clean if c not in known]
        if unknown:
            raise _unknown(kind, unknown)
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
