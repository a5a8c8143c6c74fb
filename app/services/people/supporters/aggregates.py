"""Supporter counts per district and per INSEE 200 m tile, with cells below k suppressed.

Limited to the campaign's territory (``campaign_district``): districts outside it are not listed,
and tiles count only supporters inside one of its districts (every supporter when the territory
is the whole country). Counted: ``status = 'active' AND geom IS NOT NULL`` (placed at a door,
interpolated, or placed by hand; only supporters who agreed to the 'mapping' purpose are ever
placed). Computed live from ``supporter`` in the caller's transaction, so an erasure or
withdrawal is reflected in the same request. A cell with fewer than k supporters (zero
included) is published as suppressed (``count = None``). No exact total is published beside
suppressed cells: ``published_total`` is the sum of the published cells only, so no suppressed
value can be recovered by subtraction.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import text

from app.services.access import territory

_BY_DISTRICT = text(
    """
    WITH here AS (
        SELECT d.code, d.geom FROM district d
        JOIN campaign_district cd ON cd.campaign_id = :c AND cd.district_code = d.code
        WHERE d.kind = :kind
    ),
    placed AS (
        SELECT DISTINCT ON (s.id) s.id, d.code
        FROM supporter s
        JOIN here d ON ST_Covers(d.geom, s.geom)
        WHERE s.campaign_id = :c AND s.status = 'active' AND s.geom IS NOT NULL
        ORDER BY s.id, d.code  -- contours overlap by a few m²: count each supporter once
    )
    SELECT d.code AS key, count(p.id)::int AS n
    FROM here d LEFT JOIN placed p ON p.code = d.code
    WHERE CAST(:codes AS text[]) IS NULL OR d.code = ANY(:codes)
    GROUP BY d.code ORDER BY d.code
    """
)
_BY_TILE = text(
    """
    SELECT 'CRS3035RES200mN' || (floor(ST_Y(p) / 200) * 200)::bigint
           || 'E' || (floor(ST_X(p) / 200) * 200)::bigint AS key,
           count(*)::int AS n
    FROM (SELECT ST_Transform(s.geom, 3035) AS p FROM supporter s
          WHERE s.campaign_id = :c AND s.status = 'active' AND s.geom IS NOT NULL
            AND (:country OR EXISTS (
                SELECT 1 FROM district d
                JOIN campaign_district cd ON cd.campaign_id = :c AND cd.district_code = d.code
                WHERE ST_Covers(d.geom, s.geom)))) x
    GROUP BY 1 ORDER BY 1
    """
)


@dataclass
class Cell:
    """One district or tile: its count, or None when below k."""

    key: str
    count: int | None
    suppressed: bool


@dataclass
class SupporterCounts:
    """Counts per cell with small cells suppressed; no exact grand total."""

    by: str
    k: int
    cells: list[Cell] = field(default_factory=list)
    published_total: int = 0
    suppressed_cells: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def counts(self) -> dict[str, int | None]:
        """key -> count (None when suppressed)."""
        return {c.key: c.count for c in self.cells}


async def supporter_counts(
    session: Any,
    campaign_id: uuid.UUID,
    *,
    k: int,
    by: Literal["district", "tile"] = "district",
    district_kind: str = "bureau_de_vote",
    codes: list[str] | None = None,
) -> SupporterCounts:
    """Supporters per district (every district of ``district_kind``, or ``codes``) or per tile.

    ``session`` must be scoped to ``campaign_id`` (RLS tenant set, e.g. ``ctx.session``). Every
    district is listed (suppressed ones with ``count=None``); tiles (ids ``CRS3035RES200mN…E…``
    as in ``insee_tile``) are listed only when published (≥ k): a listed small tile would reveal
    that supporters live there.
    """
    kind = await territory.ensure_kind(session, campaign_id)
    if by == "district":
        rows = await session.execute(
            _BY_DISTRICT, {"c": campaign_id, "kind": district_kind, "codes": codes}
        )
    elif by == "tile":
        rows = await session.execute(_BY_TILE, {"c": campaign_id, "country": kind == "country"})
    else:
        raise ValueError("by must be 'district' or 'tile'")
    out = SupporterCounts(by=by, k=k)
    for r in rows:
        small = r.n < k
        if small:
            out.suppressed_cells += 1
            # every district is listed (zeros too), so a suppressed district says nothing; a tile
            # is listed only where supporters live, so a small tile is left out altogether
            if by == "district":
                out.cells.append(Cell(r.key, None, True))
        else:
            out.cells.append(Cell(r.key, r.n, False))
            out.published_total += r.n
    return out
