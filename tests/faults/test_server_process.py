"""`porte serve` as a real process: SIGTERM while batches are in flight, a worker killed with -9.

The batches are held in the database by an uncommitted visit carrying the same client UUID as
one of theirs (the visit insert waits for that transaction to decide), so "in flight" is a fact
the test controls, not a race.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from tests.factories import make_world
from tests.faults.bounds import bounded
from tests.faults.processes import Served, pid_with_local_port, wait_until
from tests.fixtures_browser import free_port
from tests.fixtures_field import assigned_turf, count_visits, now_iso, visit

pytestmark = [pytest.mark.faults, pytest.mark.slow]


class Hold:
    """An open transaction holding an uncommitted visit with a batch's lowest client UUID."""

    def __init__(self, engine, campaign_id, round_id, batch):
        self.engine, self.cid, self.round_id = engine, campaign_id, round_id
        self.item = min(batch, key=lambda v: uuid.UUID(v["id"]))  # batches insert in id order
        self.conn = self.trans = None

    async def __aenter__(self) -> Hold:
        self.conn = await self.engine.connect()
        self.trans = await self.conn.begin()
        await self.conn.execute(
            text(
                "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, visited_at) "
                "VALUES (:c, :i, :d, :r, 'not_home', now())"
            ),
            {"c": self.cid, "i": self.item["id"], "d": self.item["door"], "r": self.round_id},
        )
        return self

    async def release(self) -> None:
        if self.trans is not None and self.trans.is_active:
            await self.trans.rollback()

    async def __aexit__(self, *exc) -> None:
        await self.release()
        await self.conn.close()


async def _waiting(fault_db, n: int) -> bool:
    """Whether ``n`` service connections wait on a lock in the fault database."""
    out = await asyncio.to_thread(
        fault_db.cluster.psql,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'faults' "
        "AND application_name = 'porte' AND wait_event_type = 'Lock'",
    )
    return int(out.strip()) >= n


async def _stored(engine, campaign_id, batch) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM visit WHERE campaign_id = :c AND id = ANY(:ids)"),
                {"c": campaign_id, "ids": [uuid.UUID(v["id"]) for v in batch]},
            )
        ).scalar_one()


async def _round(engine, campaign_id):
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT round_id FROM visit WHERE campaign_id = :c LIMIT 1"),
                {"c": campaign_id},
            )
        ).scalar_one()


async def _campaign(server: Served, fault_owner, fault_settings):
    """A campaign, a turf assigned to its volunteer, and a first batch stored (the round)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:
        world = await make_world(fault_owner, fault_settings)
        _, _, doors = await assigned_turf(api, world, fault_owner, half=0.002)
        first = [visit(d, "not_home", at=now_iso()) for d in doors[:5]]
        r = await api.post(world.url("/visits"), json={"visits": first}, headers=_vol(world))
        assert r.status_code == 200, r.text
    return world, doors, first, await _round(fault_owner, world.campaign_id)


def _vol(world) -> dict[str, str]:
    return world.headers["volunteer"]


def _batch(doors, n: int, outcome: str) -> list[dict]:
    at = now_iso()
    return [visit(doors[i % len(doors)], outcome, at=at) for i in range(n)]


def _keep_alive(port: int) -> socket.socket:
    """A connection that has completed one request and stays open (HTTP/1.1 keep-alive)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: faults\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(4096)
        assert chunk, "the server closed a fresh keep-alive connection"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return sock


def _closed_by_server(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends on an idle connection before closing it (b'' : closed cleanly)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


@bounded(180)
async def test_sigterm_finishes_work_in_flight_refuses_new_and_commits_nothing_half_done(
    fault_db, fault_owner, fault_settings, tmp_path
):
    """SIGTERM with two batches in flight: the one that can finish within the grace period
    finishes and is stored; the one still stuck when the grace ends is stopped, answered 503 +
    Retry-After and nothing of it is stored. Meanwhile the idle kept-alive connection is closed
    by the server and new connections are refused (so a phone or proxy retries); the process
    exits within the grace period plus a margin. After a restart, the phone's replay stores the
    stopped batch exactly once."""
    grace = 4
    port = free_port()
    env = dict(shutdown_grace_s=grace, statement_timeout_s=120, request_deadline_s=300)
    server = Served(fault_settings, port, tmp_path, **env).start()
    again = None
    try:
        await server.ready()
        world, doors, first, round_id = await _campaign(server, fault_owner, fault_settings)
        finishes, stuck = _batch(doors, 300, "talked"), _batch(doors, 300, "refused")
        idle = await asyncio.to_thread(_keep_alive, port)
        async with (
            Hold(fault_owner, world.campaign_id, round_id, finishes) as hold_a,
            Hold(fault_owner, world.campaign_id, round_id, stuck) as hold_b,
            httpx.AsyncClient(base_url=server.url, timeout=60) as phone_a,
            httpx.AsyncClient(base_url=server.url, timeout=60) as phone_b,
        ):
            url = world.url("/visits")
            task_a = asyncio.create_task(
                phone_a.post(url, json={"visits": finishes}, headers=_vol(world))
            )
            task_b = asyncio.create_task(
                phone_b.post(url, json={"visits": stuck}, headers=_vol(world))
            )
            await wait_until(lambda: _waiting(fault_db, 2), 30, "both batches in flight")

            signalled = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            # The idle kept-alive connection: closed by the server, no answer on it.
            assert await asyncio.to_thread(_closed_by_server, idle, 10) == b""
            idle.close()
            # A new connection: refused (the listening socket is closed).
            with pytest.raises(ConnectionRefusedError):
                await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 5)

            await asyncio.sleep(1)
            await hold_a.release()  # batch A can go on: it finishes within the grace
            ra = await task_a
            assert ra.status_code == 200, ra.text
            assert ra.json()["created"] == len(finishes)

            rb = await task_b  # batch B is still held when the grace period ends
            assert rb.status_code == 503, (rb.status_code, rb.text)
            assert int(rb.headers["Retry-After"]) > 0
            assert rb.headers["content-type"].startswith("application/problem+json")
            code = await server.wait_exit(grace + 20)
            took = time.monotonic() - signalled
            # uvicorn re-raises the signal once it has stopped: "terminated by SIGTERM"
            assert code in (0, -signal.SIGTERM), server.tail()
            assert took < grace + 15, took
            await hold_b.release()

        assert await _stored(fault_owner, world.campaign_id, finishes) == len(finishes)
        assert await _stored(fault_owner, world.campaign_id, stuck) == 0  # nothing half-done
        log = server.tail(20000)
        assert "Exception in ASGI application" not in log and "Traceback" not in log, log

        again = Served(fault_settings, free_port(), tmp_path).start()
        await again.ready()
        async with httpx.AsyncClient(base_url=again.url, timeout=60) as phone:
            url = world.url("/visits")
            r = await phone.post(url, json={"visits": stuck}, headers=_vol(world))
            assert r.json()["created"] == len(stuck), r.text
            for b in (first, finishes, stuck):  # lost acks: the phone sends everything again
                r = await phone.post(url, json={"visits": b}, headers=_vol(world))
                assert r.json()["already_recorded"] == len(b), r.text
        total = len(first) + len(finishes) + len(stuck)
        assert await count_visits(fault_owner, world.campaign_id) == total
    finally:
        server.kill_all()
        if again is not None:
            again.kill_all()


@bounded(180)
async def test_worker_killed_mid_batch_loses_nothing(
    fault_db, fault_owner, fault_settings, tmp_path
):
    """Two workers; the one writing a large batch is killed with -9 mid-batch (its transaction
    open): the phone sees the connection drop, the supervisor starts a new worker, and the
    replay stores the batch once. Then the whole server is killed -9 mid-batch and started
    again: every batch replayed, 0 lost, 0 doubled."""
    server = Served(fault_settings, free_port(), tmp_path, workers=2).start()
    second = None
    try:
        await server.ready(within=90)
        world, doors, first, round_id = await _campaign(server, fault_owner, fault_settings)
        url = world.url("/visits")
        batches = [_batch(doors, 2000, o) for o in ("talked", "not_home", "refused")]
        acked = [first]

        # 1. kill -9 the worker holding batch 0, mid-batch
        async with (
            Hold(fault_owner, world.campaign_id, round_id, batches[0]) as hold,
            httpx.AsyncClient(base_url=server.url, timeout=60) as phone,
        ):
            task = asyncio.create_task(
                phone.post(url, json={"visits": batches[0]}, headers=_vol(world))
            )
            await wait_until(lambda: _waiting(fault_db, 1), 30, "the batch in flight")
            port = await asyncio.to_thread(
                fault_db.cluster.psql,
                "SELECT client_port FROM pg_stat_activity WHERE datname = 'faults' "
                "AND application_name = 'porte' AND wait_event_type = 'Lock'",
            )
            workers = server.worker_pids()
            assert len(workers) == 2, workers
            victim = pid_with_local_port(int(port.split()[0]), workers)
            assert victim is not None, (port, workers)
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                await task
            await hold.release()
        assert await _stored(fault_owner, world.campaign_id, batches[0]) == 0

        def replaced() -> bool:
            now = server.worker_pids()
            return len(now) == 2 and victim not in now

        await wait_until(replaced, 60, "the supervisor to start a new worker")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as phone:
            for b in batches[:2]:  # the replay of batch 0, then batch 1
                r = await phone.post(url, json={"visits": b}, headers=_vol(world))
                assert r.status_code == 200 and r.json()["created"] == len(b), r.text
                acked.append(b)

        # 2. kill -9 the whole server (supervisor and workers) while batch 2 is written
        async with (
            Hold(fault_owner, world.campaign_id, round_id, batches[2]) as hold,
            httpx.AsyncClient(base_url=server.url, timeout=60) as phone,
        ):
            task = asyncio.create_task(
                phone.post(url, json={"visits": batches[2]}, headers=_vol(world))
            )
            await wait_until(lambda: _waiting(fault_db, 1), 30, "the batch in flight")
            server.kill_all()
            with pytest.raises(httpx.TransportError):
                await task
            await hold.release()
        assert await _stored(fault_owner, world.campaign_id, batches[2]) == 0

        second = Served(fault_settings, free_port(), tmp_path, workers=2).start()
        await second.ready(within=90)
        async with httpx.AsyncClient(base_url=second.url, timeout=60) as phone:
            r = await phone.post(url, json={"visits": batches[2]}, headers=_vol(world))
            assert r.status_code == 200 and r.json()["created"] == len(batches[2]), r.text
            acked.append(batches[2])
            for b in acked:  # the phone lost its acks: everything again, nothing doubled
                r = await phone.post(url, json={"visits": b}, headers=_vol(world))
                assert r.json()["already_recorded"] == len(b), r.text
        ids = {v["id"] for b in acked for v in b}
        assert await count_visits(fault_owner, world.campaign_id) == len(ids) == 6005
    finally:
        server.kill_all()
        if second is not None:
            second.kill_all()


@bounded(30)
async def test_a_draining_server_answers_503_and_closes(fault_client):
    """A request reaching a process that is stopping (between SIGTERM and the listener's
    close): 503, Retry-After, ``Connection: close``, nothing done."""
    fault_client.app.state.draining = True
    try:
        r = await fault_client.get("/health/live")
    finally:
        fault_client.app.state.draining = False
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["connection"] == "close"
    assert r.json()["retry_after"] == int(r.headers["Retry-After"])
