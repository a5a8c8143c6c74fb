"""Lag-tolerant reads on a REAL streaming replica (beyond one server).

The standby is made by ``pg_basebackup -R`` from a throwaway primary cluster
(``Cluster.create_standby``, as the ``porte_replicator`` role over TCP) and streams from it.
Reads are shown to come from the replica by pausing its replay (``pg_wal_replay_pause()``) and
then changing the primary: what a route answers tells which server it read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner

from app import authz
from app.cli import cli
from app.main import create_app
from app.migrate import upgrade
from app.pgcluster import Cluster
from app.security import ReplicaScope
from tests.conftest import DbUrls, make_settings
from tests.factories import World, make_world

pytestmark = pytest.mark.slow

# Two squares near Antony (EPSG:4326); a z14 tile holding the first one.
SQUARES = {
    code: f"MULTIPOLYGON((({x} 48.750, {x + 0.005} 48.750, {x + 0.005} 48.755, {x} 48.755, "
    f"{x} 48.750)))"
    for code, x in (("RPL_0001", 2.290), ("RPL_0002", 2.400))
}
TILE = (14, 8296, 5643)  # the z14 tile of the first square only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def primary() -> Iterator[Cluster]:
    """A throwaway primary of its own, migrated. Not the suite's cluster: by the time this module
    runs that one holds every test's database, and its base backup took 80 s instead of ~5."""
    base = Path(tempfile.mkdtemp(prefix="porte-primary-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "db", _free_port())
    cluster.start()
    yield cluster
    cluster.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def rdb(primary: Cluster) -> DbUrls:
    name = "replica"
    primary.create_database(name)
    upgrade(primary.url("owner", name))
    return DbUrls(name, primary.url("app", name), primary.url("owner", name))


@pytest.fixture(scope="module")
def standby(primary: Cluster, rdb: DbUrls) -> Iterator[Cluster]:
    """A hot standby of the primary (pg_basebackup -R), streaming from it, made by
    `porte db replica` as an admin would."""
    base = Path(tempfile.mkdtemp(prefix="porte-standby-", dir="/tmp"))
    os.chmod(base, 0o755)
    port = _free_port()
    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PORTE_DB_DIR", str(primary.data_dir))
        env.setenv("PORTE_DB_PORT", str(primary.port))
        result = CliRunner().invoke(cli, ["db", "replica", str(base / "db"), "--port", str(port)])
    assert result.exit_code == 0, result.output
    sb = Cluster(base / "db", port)
    assert f"PORTE_REPLICA_URL={sb.url('app')}" in result.output
    print(f"standby made and started in {time.monotonic() - t0:.1f} s")
    yield sb
    sb.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
async def owner(rdb: DbUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(rdb.owner, pool_size=2)
    yield engine
    await engine.dispose()


async def _caught_up(primary: Cluster, standby: Cluster, within: float = 20) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    lsn = primary.psql("SELECT pg_current_wal_lsn()").strip()
    end = time.monotonic() + within
    while time.monotonic() < end:
        done = standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn").strip()
        if done == "t":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the standby did not replay up to {lsn} in {within} s")


@pytest.fixture(scope="module")
async def worlds(owner: AsyncEngine, rdb: DbUrls, standby: Cluster, primary: Cluster):
    """Two campaigns, two districts, one audit event per campaign; replayed on the standby."""
    settings = make_settings(rdb)
    a = await make_world(owner, settings)
    b = await make_world(owner, settings)
    async with owner.begin() as conn:
        for code, wkt in SQUARES.items():
            await conn.execute(
                text(
                    "INSERT INTO district (code, kind, name, commune_code, commune_name, geom, "
                    "geom_3035, source_file) VALUES (:c, 'bureau_de_vote', :c, '92002', 'Antony', "
                    "ST_GeomFromText(:w, 4326), ST_Transform(ST_GeomFromText(:w, 4326), 3035), "
                    "'replica-test')"
                ),
                {"c": code, "w": wkt},
            )
        for w in (a, b):
            await conn.execute(
                text(
                    "INSERT INTO audit_event (campaign_id, action, object) "
                    "VALUES (:c, 'test.seed', 'replica')"
                ),
                {"c": w.campaign_id},
            )
    await _caught_up(primary, standby)
    return a, b


def _app(rdb: DbUrls, standby: Cluster | None, **overrides):
    url = (
        standby.url("app", rdb.name) if standby else f"postgresql://x:y@127.0.0.1:{_free_port()}/x"
    )
    return create_app(make_settings(rdb, replica_url=url, **overrides))


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_standby_keeps_row_level_security_and_refuses_writes(
    standby: Cluster, rdb: DbUrls, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    owner = await asyncpg.connect(_pg(standby.url("owner", rdb.name)))
    try:
        version = await owner.fetchval(
            "SELECT token_version FROM app_user WHERE id = $1", a.users["admin"]
        )
    finally:
        await owner.close()
    conn = await asyncpg.connect(_pg(standby.url("app", rdb.name)))
    try:
        assert await conn.fetchval("SELECT pg_is_in_recovery()")
        async with conn.transaction():
            # porte_enter only reads and sets transaction-local settings: it works on a standby
            standing = await conn.fetchrow(
                "SELECT * FROM porte_enter($1, $2, NULL, $3)",
                a.campaign_id,
                a.users["admin"],
                version,
            )
            assert standing["role"] == "admin"
            mine = await conn.fetchval("SELECT count(*) FROM audit_event")
            theirs = await conn.fetchval(
                "SELECT count(*) FROM audit_event WHERE campaign_id = $1", b.campaign_id
            )
            campaigns = await conn.fetch("SELECT id FROM campaign")
            members = await conn.fetchval(
                "SELECT count(*) FROM membership WHERE campaign_id = $1", b.campaign_id
            )
        assert mine == 1 and theirs == 0 and members == 0
        assert [r["id"] for r in campaigns] == [a.campaign_id]
        # no tenant at all: nothing of any campaign
        assert await conn.fetchval("SELECT count(*) FROM audit_event") == 0
        # a write routed here by mistake is refused by PostgreSQL itself, nothing kept
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('porte.campaign_id', $1, true)", str(a.campaign_id)
                )
                await conn.execute(
                    "INSERT INTO audit_event (campaign_id, action) VALUES ($1, 'x')",
                    a.campaign_id,
                )
    finally:
        await conn.close()
    # the rows of campaign B are there on the standby (the owner bypasses RLS): RLS hid them
    owner = await asyncpg.connect(_pg(standby.url("owner", rdb.name)))
    try:
        assert (
            await owner.fetchval(
                "SELECT count(*) FROM audit_event WHERE campaign_id = $1", b.campaign_id
            )
            == 1
        )
    finally:
        await owner.close()


async def test_lag_tolerant_routes_read_the_replica_and_fall_back(
    primary: Cluster,
    standby: Cluster,
    rdb: DbUrls,
    owner: AsyncEngine,
    worlds: tuple[World, World],
) -> None:
    a, _ = worlds
    tolerant = _app(rdb, standby, replica_max_lag_s=3600)
    strict = _app(rdb, standby, replica_max_lag_s=1.0, replica_lag_check_s=0)
    down = _app(rdb, None)
    analyst = a.headers["analyst"]
    ogc = f"/campaigns/{a.campaign_id}/ogc/collections/districts/items"
    tile = f"/campaigns/{a.campaign_id}/tiles/districts/{TILE[0]}/{TILE[1]}/{TILE[2]}.mvt"
    export = f"/campaigns/{a.campaign_id}/exports/priority-zones.geojson"

    async def codes(app) -> list[str]:
        async with _client(app) as c:
            r = await c.get(ogc, headers=analyst)
        assert r.status_code == 200, r.text
        return sorted(f["id"] for f in r.json()["features"])

    async def audits() -> int:
        async with owner.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT count(*) FROM audit_event WHERE campaign_id = :c"),
                    {"c": a.campaign_id},
                )
            ).scalar_one()

    try:
        # Warm up: the first export computes and stores what the ranking needs: the standby
        # refuses that write and the primary serves the request; then the standby catches up.
        async with _client(tolerant) as c:
            assert (await c.get(export, headers=analyst)).status_code == 200
        await _caught_up(primary, standby)
        assert await codes(tolerant) == ["RPL_0001", "RPL_0002"]

        standby.psql("SELECT pg_wal_replay_pause()")
        try:
            async with owner.begin() as conn:
                await conn.execute(text("DELETE FROM district WHERE code = 'RPL_0001'"))
            before = await audits()
            # the lag-tolerant routes still see the district deleted on the primary
            assert await codes(tolerant) == ["RPL_0001", "RPL_0002"]
            async with _client(tolerant) as c:
                r = await c.get(tile, headers=analyst)
                assert r.status_code == 200 and r.content  # the replica still has it
                r = await c.get(export, headers=analyst)
                assert r.status_code == 200, r.text
                exported = sorted(f["properties"]["code"] for f in r.json()["features"])
                assert exported == ["RPL_0001", "RPL_0002"]
                # ... while what volunteers and writers use reads the primary
                r = await c.get("/districts/RPL_0001")
                assert r.status_code == 404
            # the export's audit event was written on the primary, in the same request
            assert await audits() == before + 1
            assert tolerant.state.db.replica.last_lag is not None

            # lag beyond the bound: the primary serves (paused replay: lag grows with time)
            await asyncio.sleep(1.2)
            assert await codes(strict) == ["RPL_0002"]
            assert strict.state.db.replica.last_lag > 1.0
            async with _client(strict) as c:
                assert (await c.get(tile, headers=analyst)).status_code == 204

            # replica unreachable: the primary serves, at once, and the replica is skipped
            t0 = time.monotonic()
            assert await codes(down) == ["RPL_0002"]
            assert time.monotonic() - t0 < 5
            assert not down.state.db.replica.available()
            async with _client(down) as c:
                replica = (await c.get("/health")).json()["replica"]
            assert replica["status"] == "skipped" and "unreachable" in replica["reason"]
        finally:
            standby.psql("SELECT pg_wal_replay_resume()")
        await _caught_up(primary, standby)
        assert await codes(tolerant) == ["RPL_0002"]
    finally:
        for app in (tolerant, strict, down):
            await app.state.db.dispose()


async def test_a_write_on_a_replica_route_runs_once_on_the_primary(
    rdb: DbUrls,
    standby: Cluster,
    owner: AsyncEngine,
    worlds: tuple[World, World],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A route declared lag-tolerant that writes through ``ctx.session`` by mistake: the
    standby refuses the write, the request runs again on the primary, the row is stored once."""
    a, _ = worlds
    app = _app(rdb, standby, replica_max_lag_s=3600)
    path = "/campaigns/{campaign_id}/replica-probe"
    monkeypatch.setitem(authz.ROUTE_ROLES, ("GET", path), authz.STAFF)
    served: list[str] = []

    async def probe(ctx: ReplicaScope) -> dict:
        served.append(ctx.read_from)
        await ctx.session.execute(
            text(
                "INSERT INTO audit_event (campaign_id, action, object) "
                "VALUES (:c, 'test.probe', 'mistake')"
            ),
            {"c": ctx.campaign_id},
        )
        return {"read_from": ctx.read_from}

    app.add_api_route(path, probe, methods=["GET"])
    try:
        with caplog.at_level(logging.INFO, logger="porte.replica"):
            async with _client(app) as c:
                r = await c.get(
                    f"/campaigns/{a.campaign_id}/replica-probe", headers=a.headers["admin"]
                )
        assert r.status_code == 200, r.text
        assert served == ["replica", "primary"]
        assert r.json() == {"read_from": "primary"}
        assert "the request writes" in caplog.text
        async with owner.connect() as conn:
            n = (
                await conn.execute(
                    text("SELECT count(*) FROM audit_event WHERE action = 'test.probe'")
                )
            ).scalar_one()
        assert n == 1
    finally:
        await app.state.db.dispose()


async def test_replica_routes_check_membership_on_the_primary(
    rdb: DbUrls, standby: Cluster, owner: AsyncEngine, primary: Cluster
) -> None:
    """A member removed on the primary is refused at once, even while the replica lags."""
    settings = make_settings(rdb)
    w = await make_world(owner, settings)
    await _caught_up(primary, standby)
    app = _app(rdb, standby, replica_max_lag_s=3600)
    url = f"/campaigns/{w.campaign_id}/ogc/collections/districts/items"
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        async with owner.begin() as conn:
            await conn.execute(
                text("DELETE FROM membership WHERE campaign_id = :c AND user_id = :u"),
                {"c": w.campaign_id, "u": w.users["analyst"]},
            )
        async with _client(app) as c:
            assert (await c.get(url, headers=w.headers["analyst"])).status_code == 404
            assert (await c.get(url, headers=w.headers["organiser"])).status_code == 200
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
        await app.state.db.dispose()
