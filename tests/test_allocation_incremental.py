"""Incremental, resumable allocation: only the blocks a change touches are rebuilt, the result is
the same as a full rebuild, and an interrupted refresh (killed, or its connection cut as by a
database restart) is finished by the next run with nothing counted twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from importlib import resources

import asyncpg
import pytest

from app.services.reference.allocation import refresh_in_steps
from bench.allocation.synthetic import Size, build

# 4 x 3 blocks of 10 km, 150 SYNTHETIC districts, 12,000 doors: a few seconds to build.
SIZE = Size(4, 3, 150, 12_000, towns=6)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _connect(urls) -> asyncpg.Connection:
    return await asyncpg.connect(_dsn(urls.owner))


@pytest.fixture(scope="module")
async def base(make_db):
    urls = make_db("allocinc")
    conn = await _connect(urls)
    try:
        async with conn.transaction():
            await build(conn, SIZE)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    await refresh_in_steps(urls.owner)
    return urls


async def _snapshot(conn) -> dict:
    doors = dict(await conn.fetch("SELECT address_id, district_code FROM door_district"))
    pairs = {
        (r["district_code"], r["tile_id"]): (round(r["weight"], 9), r["method"], r["doors"])
        for r in await conn.fetch(
            "SELECT district_code, tile_id, weight, method, doors FROM district_alloc"
        )
    }
    profiles = {
        r["district_code"]: (round(r["men"] or 0, 6), r["tiles"], r["doors"], r["hh"])
        for r in await conn.fetch(
            "SELECT district_code, men, tiles, doors, round(door_households::numeric, 3) AS hh "
            "FROM district_profile"
        )
    }
    return {"doors": doors, "pairs": pairs, "profiles": profiles}


async def _full_rebuild(conn) -> dict:
    async with conn.transaction():
        await conn.execute("UPDATE allocation_state SET full_pending = true, stale = true")
        await conn.execute("SELECT porte_refresh_allocation()")
    return await _snapshot(conn)


async def test_a_change_rebuilds_only_its_blocks_and_matches_a_full_rebuild(base):
    conn = await _connect(base)
    try:
        version = await conn.fetchval("SELECT version FROM allocation_state")
        assert await conn.fetchval("SELECT count(*) FROM allocation_dirty") == 0
        # In the lower-left block only: move a few doors, drop some, add some, change a tile's
        # counts and reshape one district.
        x0, y0 = SIZE.origin_x, SIZE.origin_y
        corner = f"ST_MakeEnvelope({x0}, {y0}, {x0 + 10_000}, {y0 + 10_000}, 3035)"
        inside = (
            f"ST_Intersects(ST_Transform(geom, 3035), ST_Buffer({corner}, -300)) AND "
            f"geom && ST_Transform({corner}, 4326)"
        )
        async with conn.transaction():
            await conn.execute(
                f"UPDATE address SET lon = lon + 0.001 WHERE id IN "
                f"(SELECT id FROM address WHERE {inside} ORDER BY id LIMIT 40)"
            )
            await conn.execute(
                f"DELETE FROM address WHERE id IN "
                f"(SELECT id FROM address WHERE {inside} ORDER BY id DESC LIMIT 30)"
            )
            await conn.execute(
                "INSERT INTO address (ban_id, numero, nom_voie, code_insee, lon, lat, source, "
                "source_file) SELECT 'NEW_' || n, n, 'SYNTHETIC new street', 'S0001', "
                "ST_X(p), ST_Y(p), 'synthetic', 'new.csv' FROM generate_series(1, 25) n, "
                f"ST_Transform(ST_SetSRID(ST_MakePoint({x0} + 2000 + n * 150, {y0} + 4000), "
                "3035), 4326) p"
            )
            await conn.execute(
                f"UPDATE insee_tile SET men = men + 7 WHERE id = (SELECT id FROM insee_tile "
                f"WHERE geom && ST_Buffer({corner}, -500) ORDER BY id LIMIT 1)"
            )
            await conn.execute(
                "UPDATE district SET geom_3035 = ST_Multi(ST_Buffer(geom_3035, 150)), "
                "geom = ST_Multi(ST_Transform(ST_Buffer(geom_3035, 150), 4326)) WHERE code = "
                f"(SELECT code FROM district WHERE ST_Contains(ST_Buffer({corner}, -1000), "
                "geom_3035) ORDER BY code LIMIT 1)"
            )
        queued = await conn.fetchval("SELECT count(*) FROM allocation_dirty")
        total_blocks = SIZE.blocks_x * SIZE.blocks_y
        assert 0 < queued <= 4, queued  # the corner block and at most its neighbours
        assert await conn.fetchval("SELECT stale FROM allocation_state")

        report = await refresh_in_steps(base.owner)
        assert report.blocks == queued < total_blocks
        state = await conn.fetchrow("SELECT * FROM allocation_state")
        assert not state["stale"] and state["version"] == version + 1
        changed = await conn.fetch(
            "SELECT p.district_code, d.geom_3035 && ST_Expand("
            f"{corner}, 10000) AS near FROM district_profile p JOIN district d "
            "ON d.code = p.district_code WHERE p.alloc_version > $1",
            version,
        )
        n_districts = await conn.fetchval("SELECT count(*) FROM district")
        assert 0 < len(changed) < n_districts / 2
        assert all(r["near"] for r in changed)  # only districts around the change

        incremental = await _snapshot(conn)
        full = await _full_rebuild(conn)
        assert incremental["doors"] == full["doors"]
        assert incremental["pairs"] == full["pairs"]
        assert incremental["profiles"] == full["profiles"]
    finally:
        await conn.close()


async def test_a_request_never_waits_behind_a_running_refresh(base):
    """While a refresh holds the lock (the command, or another request), a request that finds
    the allocation stale uses it as stored instead of queueing behind it (which ended in 503s
    and starved the command); once the lock is free it refreshes inline again."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.reference.allocation import ensure_allocation

    holder = await _connect(base)
    engine = create_async_engine(base.owner)
    try:
        await holder.execute(
            "INSERT INTO address (ban_id, numero, nom_voie, code_insee, lon, lat, source, "
            "source_file) SELECT 'BUSY_' || n, n, 'SYNTHETIC busy street', 'S0002', ST_X(p), "
            "ST_Y(p), 'synthetic', 'busy.csv' FROM generate_series(1, 5) n, ST_Transform("
            f"ST_SetSRID(ST_MakePoint({SIZE.origin_x} + 15000 + n * 100, "
            f"{SIZE.origin_y} + 5000), 3035), 4326) p"
        )
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock(hashtext('porte_refresh_allocation'))")
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SET statement_timeout = '3s'")
            state = await ensure_allocation(conn)  # would wait 3 s, then fail, before
            assert state.stale
            await conn.rollback()
            await tx.rollback()
            async with conn.begin():
                state = await ensure_allocation(conn)
            assert not state.stale
    finally:
        await engine.dispose()
        await holder.close()


def _cli_env(urls) -> dict[str, str]:
    env = dict(os.environ, DATABASE_URL=urls.app, OWNER_DATABASE_URL=urls.owner, PORTE_LANG="en")
    env.pop("PORTE_DATABASE_URL", None)
    return env


async def _wait_for_blocks(conn, at_least: int, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await conn.fetchval("SELECT run_blocks_done FROM allocation_state") >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the refresh did not start")


async def test_a_killed_refresh_is_finished_by_the_next_run(base):
    conn = await _connect(base)
    try:
        expected = await _full_rebuild(conn)
        await conn.execute("UPDATE allocation_state SET full_pending = true, stale = true")
        proc = subprocess.Popen(  # noqa: ASYNC220 (a real process, killed below)
            [sys.executable, "-m", "app.cli", "allocation", "refresh", "--batch-blocks", "1",
             "--throttle", "0.5", "--lines"],
            env=_cli_env(base), stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            await _wait_for_blocks(conn, 2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        state = await conn.fetchrow("SELECT * FROM allocation_state")
        left = await conn.fetchval("SELECT count(*) FROM allocation_dirty")
        assert state["stale"] and state["run_started_at"] is not None
        assert left > 0 and state["run_blocks_done"] >= 2  # killed part-way
        assert await conn.fetchval("SELECT count(*) FROM district_alloc") > 0

        done = subprocess.run(  # noqa: ASYNC221 (the next run, as a person would)
            [sys.executable, "-m", "app.cli", "allocation", "refresh"],
            env=_cli_env(base), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "interrupted run was continued" in done.stderr
        assert not await conn.fetchval("SELECT stale FROM allocation_state")
        assert await _snapshot(conn) == expected
    finally:
        await conn.close()


async def test_a_refresh_cut_off_by_the_database_is_finished_by_the_next_run(base, pg_cluster):
    """The refresher's connection is terminated mid-run, as by a database restart."""
    conn = await _connect(base)
    try:
        expected = await _full_rebuild(conn)
        await conn.execute("UPDATE allocation_state SET full_pending = true, stale = true")
        seen = []

        def cut(progress) -> None:
            seen.append(progress.done)
            if progress.done >= 3:
                pg_cluster.psql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'porte-allocation'"
                )

        with pytest.raises(Exception):  # noqa: B017 (asyncpg: ConnectionDoesNotExistError &c.)
            await refresh_in_steps(base.owner, batch_blocks=1, on_progress=cut)
        assert await conn.fetchval("SELECT count(*) FROM allocation_dirty") > 0
        report = await refresh_in_steps(base.owner)
        assert report.resumed and report.blocks > 0
        assert await _snapshot(conn) == expected
        assert not await conn.fetchval("SELECT stale FROM allocation_state")
    finally:
        await conn.close()


async def test_migrated_functions_are_those_of_app_sql_allocation(make_db, pg_cluster):
    """app/sql/allocation.sql defines exactly the functions of the migrated database: editing the
    file without a migration that installs it fails here (migrations keep their own snapshot)."""
    urls = make_db("allocsql")
    conn = await _connect(urls)
    query = (
        "SELECT p.proname, md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proname LIKE 'porte_alloc%' "
        "OR p.proname = 'porte_refresh_allocation' ORDER BY 1"
    )
    try:
        before = await conn.fetch(query)
        await conn.execute(resources.files("app.sql").joinpath("allocation.sql").read_text())
        after = await conn.fetch(query)
    finally:
        await conn.close()
    assert len(before) >= 10
    assert before == after
