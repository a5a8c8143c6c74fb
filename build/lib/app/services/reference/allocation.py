"""Allocation of INSEE tile counts to districts (dasymetric by doors, area share otherwise).

The work is done in SQL by ``porte_refresh_allocation()`` (migration 0006, body in
``app/sql/allocation.sql``): it fills the reference tables ``door_district``, ``district_alloc``
and ``district_profile``. Statement triggers on ``insee_tile``, ``address`` and ``district`` mark
the allocation stale whenever they change; importers may refresh at the end of their transaction
(``await refresh_allocation(conn)``), and the ranking refreshes lazily when it finds it stale (the
function is SECURITY DEFINER, so the service role may call it without write rights).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

SOURCE_TABLES = ("insee_tile", "address", "district")

_STATE = text(
    "SELECT stale, version, refreshed_at, tiles, doors, districts, pairs FROM allocation_state"
)
_SOURCES = text(
    "SELECT to_regclass('insee_tile') IS NOT NULL AND to_regclass('address') IS NOT NULL "
    "AND to_regclass('district') IS NOT NULL"
)


@dataclass(frozen=True)
class AllocationState:
    """Freshness and size of the stored allocation."""

    stale: bool
    version: int
    refreshed_at: datetime | None
    tiles: int | None
    doors: int | None
    districts: int | None
    pairs: int | None


async def refresh_allocation(conn: AsyncConnection | AsyncSession) -> int:
    """Recompute the tile -> district allocation now (as owner, after an import); new version."""
    return (await conn.execute(text("SELECT porte_refresh_allocation()"))).scalar_one()


async def allocation_state(conn: AsyncConnection | AsyncSession) -> AllocationState:
    """The allocation's state row."""
    row = (await conn.execute(_STATE)).one()
    return AllocationState(*row)


async def sources_exist(conn: AsyncConnection | AsyncSession) -> bool:
    """True when the reference tables the allocation reads exist (issue 3's migration ran)."""
    return bool((await conn.execute(_SOURCES)).scalar_one())


async def ensure_allocation(conn: AsyncConnection | AsyncSession) -> AllocationState:
    """The allocation, refreshed first when tiles, doors or districts changed since the last run."""
    state = await allocation_state(conn)
    if state.stale and await sources_exist(conn):
        await refresh_allocation(conn)
        state = await allocation_state(conn)
    return state


async def refresh_if_stale(owner_url: str) -> AllocationState:
    """After an import (as the owner): refresh the allocation now rather than in a request."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            return await ensure_allocation(conn)
    finally:
        await engine.dispose()
