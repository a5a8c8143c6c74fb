"""Supporter counts as organisers and analysts may read them: one partition per campaign.

Counted: ``status = 'active' AND tile_id IS NOT NULL`` (placed at a door, interpolated, or placed
by hand; only supporters who agreed to the 'mapping' purpose are ever placed), by the coarse
cells stored in clear with each placed supporter: their 200 m tile, polling station and IRIS (the
exact door is encrypted; ``cells.py`` recomputes the district codes after a contour import).
Computed live in the caller's transaction, so an erasure or withdrawal is reflected in the same
request.

A campaign publishes its supporter counts on ONE partition, chosen by its admin (campaign
setting ``supporter_cells``): ``district`` (the default: the districts the ranking uses, each
supporter in exactly one, the smallest-coded district their point falls in, as for doors) or
``tile`` (INSEE 200 m tiles). Two overlapping partitions of the same people would let a small
cell be worked out by subtraction (a district's count minus the tiles shown inside it). With one
partition and no total, the cells share no relation, and app.disclosure's rule for them is
primary suppression: every cell below k, zero included, is hidden ("nobody" and "one supporter"
read the same). The ranking's supporter factor uses these same published counts, or none when
the campaign publishes tiles.

Limited to the campaign's territory (``campaign_district``): districts outside it are not
listed, and tiles count only supporters whose district is one of the territory's (every
supporter when the territory is the whole country). A change of territory changes what is
listed, not how a cell is counted (docs/privacy.md).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import text

from app.config import Settings
from app.disclosure import protect_partition
from app.errors import InvalidInput
from app.i18n import _
from app.services.access import territory
from app.services.people.supporters.cells import ensure_cells

if TYPE_CHECKING:
    from app.db import Executor

PARTITIONS = ("district", "tile")


@cache
def _by_district_sql() -> str:
    """Supporters per district, exactly as the ranking counts them (app/sql)."""
    body = (resources.files("app") / "sql" / "ranking_supporters.sql").read_text()
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))


_DISTRICTS = text(
    "SELECT d.code FROM district d JOIN campaign_district cd ON cd.campaign_id = :c "
    "AND cd.district_code = d.code WHERE (CAST(:kind AS text) IS NULL OR d.kind = :kind) "
    "AND (CAST(:codes AS text[]) IS NULL OR d.code = ANY(:codes)) ORDER BY d.code"
)
_BY_TILE = text(
    """
    SELECT s.tile_id AS key, count(*)::int AS n
    FROM supporter s
    WHERE s.campaign_id = :c AND s.status = 'active' AND s.tile_id IS NOT NULL
      AND (:country OR EXISTS (
          SELECT 1 FROM campaign_district cd WHERE cd.campaign_id = :c
          AND cd.district_code = least(s.bv_code, s.iris_code)))
    GROUP BY 1 ORDER BY 1
    """
)
_PARTITION = text("SELECT supporter_cells FROM campaign WHERE id = :c")


@dataclass
class Cell:
    """One district or tile: its count, or None when hidden."""

    key: str
    count: int | None
    suppressed: bool


@dataclass
class SupporterCounts:
    """Counts per cell of the campaign's partition, small cells hidden; no grand total."""

    by: str
    k: int
    cells: list[Cell] = field(default_factory=list)
    published_total: int = 0  # the sum of the published cells only

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def counts(self) -> dict[str, int | None]:
        """key -> count (None when hidden)."""
        return {c.key: c.count for c in self.cells}


async def partition(session: Executor, campaign_id: uuid.UUID) -> str:
    """The campaign's partition of supporter counts: 'district' or 'tile'."""
    return (await session.execute(_PARTITION, {"c": campaign_id})).scalar_one()


async def _raw_by_district(
    session: Any, campaign_id: uuid.UUID, settings: Settings | None = None
) -> dict[str, int]:
    await ensure_cells(session, campaign_id, settings)  # district codes after a contour import
    rows = await session.execute(text(_by_district_sql()), {"campaign_id": campaign_id})
    return {r.district_code: int(r.n) for r in rows}


async def published_district_counts(
    session: Executor, campaign_id: uuid.UUID, k: int, settings: Settings | None = None
) -> dict[str, int] | None:
    """Published supporter counts per district ({code: n}, hidden ones left out), or None when
    the campaign publishes tiles instead. What the ranking's supporter factor is made of.
    ``settings``: the data keys, in case district codes must be recomputed (``ensure_cells``)."""
    if await partition(session, campaign_id) != "district":
        return None
    raw = await _raw_by_district(session, campaign_id, settings)
    shown = protect_partition(raw, k)
    return {code: n for code, n in sorted(shown.items()) if n is not None}


async def supporter_counts(
    session: Executor,
    campaign_id: uuid.UUID,
    *,
    k: int,
    by: Literal["district", "tile"] = "district",
    district_kind: str | None = None,
    codes: list[str] | None = None,
    settings: Settings | None = None,
) -> SupporterCounts:
    """Supporters per cell of the campaign's partition (``by`` must name it: 422 otherwise).

    ``session`` must be scoped to ``campaign_id`` (RLS tenant set, e.g. ``ctx.session``).
    Districts: every district is listed (of ``district_kind``, or ``codes``), hidden ones with
    ``count=None``. Tiles (ids ``CRS3035RES200mN…E…`` as in ``insee_tile``) are listed only when
    shown: a listed small tile would say that supporters live there. ``settings`` give the data
    keys in case the district codes must be recomputed after a contour import (``ensure_cells``).
    """
    if by not in PARTITIONS:
        raise InvalidInput(_("by must be 'district' or 'tile'."), field="by")
    chosen = await partition(session, campaign_id)
    if by != chosen:
        raise InvalidInput(
            _(
                "This campaign publishes its supporter counts per {chosen} only: counts on a "
                "second, overlapping partition would let small cells be worked out by "
                "subtraction. Ask with by={chosen}; the admin chooses the partition with "
                'PATCH /campaigns/{{id}} {{"supporter_cells": ...}}.'
            ).format(chosen=chosen),
            field="by",
        )
    out = SupporterCounts(by=by, k=k)
    kind = await territory.ensure_kind(session, campaign_id)
    if by == "district":
        raw = await _raw_by_district(session, campaign_id, settings)
        listed = (
            await session.execute(
                _DISTRICTS, {"c": campaign_id, "kind": district_kind, "codes": codes}
            )
        ).scalars()
        shown = protect_partition(raw, k)
        for code in listed:
            n = shown.get(code) if code in raw else None
            out.cells.append(Cell(code, n, n is None))
    else:
        binds = {"c": campaign_id, "country": kind == "country"}
        raw = {r.key: r.n for r in await session.execute(_BY_TILE, binds)}
        for key, n in protect_partition(raw, k).items():
            if n is not None:
                out.cells.append(Cell(key, n, False))
    out.published_total = sum(c.count for c in out.cells if c.count is not None)
    return out
