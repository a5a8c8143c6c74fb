"""Allocation of INSEE tile counts to districts (dasymetric by doors, area share otherwise).

The work is done in SQL (app/sql/allocation.sql, installed by migration 0021) and fills the
reference tables ``door_district``, ``district_alloc`` and ``district_profile``. It is cut into
10 km blocks: statement triggers on ``address``, ``insee_tile`` and ``district`` queue the blocks a
change touches, so re-importing one département rebuilds that département's blocks only; a
TRUNCATE of a source table queues everything.

Three ways to run it:

- ``refresh_in_steps(owner_url)``: the driver of ``porte allocation refresh`` and of the import
  commands. One transaction per step of a few blocks, so it can be interrupted at any point (killed,
  database restarted) and the next run continues where it stopped; progress is reported after each
  step;
- ``refresh_allocation(conn)``: everything queued, in the caller's transaction (tests, scripts);
- ``ensure_allocation(conn)``: what a request does when it finds the allocation stale: refresh
  inline if little is queued (at most ``LAZY_MAX_BLOCKS`` blocks), otherwise use the allocation as
  it is and leave the rest to the command (a national rebuild takes minutes, not a request's time).

The functions are SECURITY DEFINER, so the service role may call them without write rights.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.dburl import asyncpg_dsn as _dsn
from app.dburl import connect_long_job

SOURCE_TABLES = ("insee_tile", "address", "district")
LAZY_MAX_BLOCKS = 64  # a request refreshes inline at most this many 10 km blocks

_STATE_SQL = (
    "SELECT stale, version, refreshed_at, tiles, doors, districts, pairs, full_pending, "
    "(SELECT count(*) FROM allocation_dirty) AS dirty_blocks, "
    "(SELECT count(*) FROM allocation_dirty_district) AS dirty_districts, "
    "run_started_at, run_blocks_done FROM allocation_state"
)
# Blocks a full rebuild would queue (the same expression as porte_allocation_begin_full).
_FULL_BLOCKS_SQL = "SELECT count(DISTINCT b) FROM district, porte_alloc_blocks_of(geom_3035) b"


@dataclass(frozen=True)
class AllocationState:
    """Freshness and size of the stored allocation, and what is queued."""

    stale: bool
    version: int
    refreshed_at: datetime | None
    tiles: int | None
    doors: int | None
    districts: int | None
    pairs: int | None
    full_pending: bool = False
    dirty_blocks: int = 0
    dirty_districts: int = 0
    run_started_at: datetime | None = None
    run_blocks_done: int = 0


@dataclass
class RefreshReport:
    """What one run of ``refresh_in_steps`` did."""

    blocks: int = 0
    steps: int = 0
    seconds: float = 0.0
    version: int = 0
    resumed: bool = False  # an interrupted run was continued
    left: int = 0  # blocks still queued (held by a transaction still running)
    profiles_seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    """Reported after each step: blocks done in this run (resumed runs included), blocks left."""

    done: int
    remaining: int
    phase: str  # "blocks" or "profiles"


async def refresh_allocation(conn: AsyncConnection | AsyncSession) -> int:
    """Rebuild everything queued now, in the caller's transaction; the new version."""
    return (await conn.execute(text("SELECT porte_refresh_allocation()"))).scalar_one()


async def allocation_state(conn: AsyncConnection | AsyncSession) -> AllocationState:
    """The allocation's state row and queue sizes."""
    row = (await conn.execute(text(_STATE_SQL))).one()
    return AllocationState(*row)


async def pending_blocks(conn: AsyncConnection | AsyncSession) -> int:
    """How many blocks the next refresh will rebuild."""
    state = await allocation_state(conn)
    if state.full_pending:
        return int((await conn.execute(text(_FULL_BLOCKS_SQL))).scalar_one())
    return state.dirty_blocks


async def ensure_allocation(
    conn: AsyncConnection | AsyncSession, *, max_blocks: int = LAZY_MAX_BLOCKS
) -> AllocationState:
    """The allocation, refreshed first if tiles, doors or districts changed and the work is small.

    With more than ``max_blocks`` blocks queued (a first national load), the stored allocation is
    returned as it is, still marked stale: ``porte allocation refresh`` (run by every import
    command) rebuilds it in steps.
    """
    state = await allocation_state(conn)
    if state.stale and await pending_blocks(conn) <= max_blocks and await _free_to_refresh(conn):
        await refresh_allocation(conn)
        state = await allocation_state(conn)
    return state


async def _free_to_refresh(conn: AsyncConnection | AsyncSession) -> bool:
    """Whether a request may refresh inline now: no `porte allocation refresh` (or import) is
    running and no other transaction holds the refresh lock. Otherwise the request waits behind
    it until its statement timeout (503, seen by bench/soak while an import refreshed), or takes
    the lock between two of the command's steps and makes the command wait for it in turn. It
    uses the stored allocation instead; the command finishes the work."""
    running = (
        await conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
                "current_database() AND application_name = 'porte-allocation')"
            )
        )
    ).scalar_one()
    if running:
        return False
    return (
        await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext('porte_refresh_allocation'))")
        )
    ).scalar_one()


async def refresh_in_steps(
    owner_url: str,
    *,
    batch_blocks: int | None = None,
    throttle: float = 0.0,
    full: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    target_seconds: float = 3.0,
) -> RefreshReport:
    """Rebuild what is queued, one committed transaction per step; resumable at any point.

    ``batch_blocks`` fixes the blocks per step (default: adapted so that a step takes about
    ``target_seconds``); ``throttle`` pauses between steps (seconds) to leave the database to
    other work; ``full`` queues a complete rebuild first.
    """
    report = RefreshReport()
    t0 = time.perf_counter()
    conn = await connect_long_job(owner_url, "porte-allocation")
    try:
        if full:
            await conn.execute("UPDATE allocation_state SET full_pending = true, stale = true")
        state = await conn.fetchrow(
            "SELECT full_pending, run_started_at, run_blocks_done FROM allocation_state"
        )
        report.resumed = state["run_started_at"] is not None and not state["full_pending"]
        if state["run_started_at"] is None:
            await conn.execute("SELECT porte_allocation_analyze()")
        if state["full_pending"]:
            await conn.execute("SELECT porte_allocation_begin_full()")
            state = await conn.fetchrow("SELECT run_blocks_done FROM allocation_state")
        done = int(state["run_blocks_done"]) if report.resumed else 0
        size = batch_blocks or 4
        remaining = await conn.fetchval("SELECT count(*) FROM allocation_dirty")
        if on_progress:
            on_progress(Progress(done, remaining, "blocks"))
        while remaining:
            started = time.perf_counter()
            row = await conn.fetchrow("SELECT * FROM porte_allocation_step($1)", size)
            took = time.perf_counter() - started
            if row["done"] == 0:  # what is left is held by a transaction still running
                break
            report.blocks += row["done"]
            report.steps += 1
            done += row["done"]
            remaining = row["remaining"]
            if on_progress:
                on_progress(Progress(done, remaining, "blocks"))
            if batch_blocks is None:
                if took < target_seconds / 3:
                    size = min(size * 2, 1024)
                elif took > target_seconds * 2 and size > 1:
                    size //= 2
            if throttle and remaining:
                await asyncio.sleep(throttle)
        report.left = int(remaining)
        if on_progress:
            on_progress(Progress(done, report.left, "profiles"))
        started = time.perf_counter()
        report.version = await conn.fetchval("SELECT porte_allocation_finish()")
        report.profiles_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    report.seconds = time.perf_counter() - t0
    return report


async def refresh_if_stale(
    owner_url: str, on_progress: Callable[[Progress], None] | None = None
) -> AllocationState:
    """After an import (as the owner): rebuild what the import queued, in resumable steps."""
    await refresh_in_steps(owner_url, on_progress=on_progress)
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        row = await conn.fetchrow(_STATE_SQL)
    finally:
        await conn.close()
    return AllocationState(*row)
