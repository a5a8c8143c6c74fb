"""Benchmark: 50 simulated phones posting batches of 20 visits to the real service for 30 s.

    .venv/bin/python -m bench.visits          (or bench/visits/run.sh; --help for options)

What it does, all on 127.0.0.1 and thrown away at the end:
1. starts a private PostGIS cluster (app.pgcluster) in a temporary directory, migrates a database;
2. loads SYNTHETIC doors (generated here, labelled source='synthetic'; not real addresses),
   50 volunteer accounts, an admin, one campaign;
3. starts the service (uvicorn, ``app.main:create_app``) as a separate process;
4. through the HTTP API: the admin cuts the doors into 50 turfs and assigns one to each volunteer;
   each phone downloads its doors (``GET /assignments/{id}/doors``);
5. 50 phones post batches of 20 visits for 30 s, paced (default one batch per phone every 0.8 s,
   i.e. 1,250 visits/s offered); 10 % of the batches are replays of an earlier batch;
6. prints visits/s, p50/p95/p99 latency, errors, duplicates and lost visits, checked against the
   database (duplicates must be 0, lost must be 0). Targets: >= 1,000 visits/s, p99 < 100 ms.
   The reference is the target itself: ratios are printed against 1,000 visits/s and 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import REPO_ROOT, Settings
from app.migrate import upgrade
from app.pgcluster import Cluster
from app.security import access_token, hash_password

OUTCOMES = ["not_home"] * 5 + ["talked"] * 2 + ["refused", "moved", "no_access"]
SECRET = "bench-visits-secret-" + "x" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(owner_url: str, phones: int, doors_per_phone: int) -> dict:
    """SYNTHETIC doors, accounts and a campaign, written as the owner."""
    engine = create_async_engine(owner_url)
    rng = np.random.default_rng(7)
    n = phones * doors_per_phone
    # Streets of 40 doors on a grid south of Antony (SYNTHETIC positions).
    street = np.arange(n) // 40
    along = (np.arange(n) % 40) // 2 * 12.0
    side = np.arange(n) % 2
    x = (street % 20) * 600.0 + along
    y = (street // 20) * 60.0 + side * 14.0
    lat = 48.70 + (y + rng.normal(0, 1, n)) / 111_195
    lon = 2.25 + (x + rng.normal(0, 1, n)) / (111_195 * np.cos(np.radians(48.7)))
    pw = hash_password(uuid.uuid4().hex)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO address (ban_id, numero, nom_voie, code_insee, nom_commune, lon, lat, "
                "source, source_file) SELECT 'bench_' || i, 1 + (i % 40), 'Rue synthétique ' || "
                "(i / 40), '00000', 'Synthétique', x, y, 'synthetic', 'bench/visits (SYNTHETIC)' "
                "FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) WITH ORDINALITY "
                "AS t(x, y, i)"
            ),
            {"lon": lon.tolist(), "lat": lat.tolist()},
        )
        users = {}
        for role in ["admin"] + [f"phone{i}" for i in range(phones)]:
            users[role] = (
                await conn.execute(
                    text(
                        "INSERT INTO app_user (email, password_hash) VALUES (:e, :h) RETURNING id"
                    ),
                    {"e": f"{role}@bench.invalid", "h": pw},
                )
            ).scalar_one()
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date) VALUES ('Bench', '2030-01-01') "
                    "RETURNING id"
                )
            )
        ).scalar_one()
        for role, uid in users.items():
            await conn.execute(
                text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r)"),
                {"c": cid, "u": uid, "r": "admin" if role == "admin" else "volunteer"},
            )
    await engine.dispose()
    bbox = [
        float(lon.min()) - 1e-4,
        float(lat.min()) - 1e-4,
        float(lon.max()) + 1e-4,
        float(lat.max()) + 1e-4,
    ]
    return {"campaign_id": cid, "users": users, "bbox": bbox, "doors": n}


def start_server(app_url: str, owner_url: str, port: int, workers: int, log: Path):
    """The service as its own process (uvicorn), started by this benchmark."""
    env = dict(
        os.environ,
        DATABASE_URL=app_url,
        OWNER_DATABASE_URL=owner_url,
        PORTE_SECRET_KEY=SECRET,
        PORTE_MODE="test",
        PORTE_DB_POOL_SIZE="10",
        PORTE_DATA_KEYS=json.dumps({"b1": base64.b64encode(b"b" * 32).decode()}),
        PORTE_DATA_KEY_ID="b1",
        PORTE_HMAC_KEY="bench-hmac",
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    fh = log.open("w")
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=fh, stderr=fh, start_new_session=True
    )


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_ready(base: str, proc: subprocess.Popen, log: Path, wait_s: float = 60) -> None:
    """Wait until the service answers /health."""
    deadline = time.monotonic() + wait_s
    async with httpx.AsyncClient(base_url=base) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"The service exited early:\n{_tail(log)}")
            try:
                if (await c.get("/health")).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"The service did not answer within {wait_s:.0f} s:\n{_tail(log)}")


async def prepare(base: str, seeded: dict, settings: Settings, phones: int, per: int) -> list:
    """Cut the doors into turfs and assign one to each phone, through the API."""
    cid = seeded["campaign_id"]
    admin_token = access_token(settings, seeded["users"]["admin"], version=0)
    admin = {"Authorization": f"Bearer {admin_token}"}
    x0, y0, x1, y1 = seeded["bbox"]
    area = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        r = await c.post(
            f"/campaigns/{cid}/cut", json={"area": area, "doors_per_turf": per}, headers=admin
        )
        if r.status_code != 201:
            raise SystemExit(f"cut failed: {r.status_code} {r.text[:500]}")
        turfs = r.json()["turfs"]
        if len(turfs) < phones:
            raise SystemExit(f"only {len(turfs)} turfs for {phones} phones")
        out = []
        for i in range(phones):
            uid = seeded["users"][f"phone{i}"]
            r = await c.post(
                f"/campaigns/{cid}/assignments",
                json={"turf_id": turfs[i]["id"], "volunteer_user_id": str(uid)},
                headers=admin,
            )
            if r.status_code != 201:
                raise SystemExit(f"assignment failed: {r.status_code} {r.text[:500]}")
            headers = {"Authorization": f"Bearer {access_token(settings, uid, version=0)}"}
            doors = await c.get(
                f"/campaigns/{cid}/assignments/{r.json()['id']}/doors", headers=headers
            )
            if doors.status_code != 200:
                raise SystemExit(f"doors failed: {doors.status_code} {doors.text[:500]}")
            out.append((headers, [f["id"] for f in doors.json()["features"]]))
    return out


class Stats:
    """What the phones saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.started: list[float] = []  # when each measured request was sent (monotonic)
        self.results: Counter[str] = Counter()
        self.created_ids: Counter[str] = Counter()
        self.acked: set[str] = set()
        self.errors: Counter[str] = Counter()
        self.replays = 0
        self.visits_posted = 0


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client for the phones (httpx costs more CPU per request
    than the service itself, and the phones share the machine with it)."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON body; returns (status, response body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{self.extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = b""
        while (size := int((await self.reader.readline()).strip(), 16)) > 0:
            data += await self.reader.readexactly(size)
            await self.reader.readline()
        await self.reader.readline()
        return status, data

    async def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()


async def phone(
    port: int,
    cid,
    headers: dict,
    doors: list[int],
    stats: Stats,
    *,
    batch: int,
    interval: float,
    replay_share: float,
    until: float,
    closed_loop: bool,
    rng: random.Random,
) -> None:
    """One phone: post a batch of visits, paced, sometimes replaying an earlier batch."""
    sent: list[bytes] = []
    path = f"/campaigns/{cid}/visits"
    http = RawHttp(port, headers)
    await asyncio.sleep(rng.uniform(0, interval))  # phones do not start in lockstep
    next_at = time.monotonic()
    try:
        while time.monotonic() < until:
            if sent and rng.random() < replay_share:
                body = rng.choice(sent)
                stats.replays += 1
            else:
                now = datetime.now(UTC).isoformat()
                items = [
                    {
                        "id": str(uuid.uuid4()),
                        "door": rng.choice(doors),
                        "outcome": rng.choice(OUTCOMES),
                        "visited_at": now,
                    }
                    for _ in range(batch)
                ]
                body = json.dumps({"visits": items}).encode()
                sent.append(body)
            t0 = time.perf_counter()
            try:
                status, data = await http.post(path, body)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                stats.errors[type(exc).__name__] += 1
                await http.close()
                http = RawHttp(port, headers)
                continue
            stats.latencies.append(time.perf_counter() - t0)
            stats.started.append(t0)
            if status != 200:
                stats.errors[str(status)] += 1
                continue
            stats.visits_posted += batch
            for res in json.loads(data)["results"]:
                stats.results[res["result"]] += 1
                if res["result"] == "created":
                    stats.created_ids[res["id"]] += 1
                if res["result"] in ("created", "already_recorded"):
                    stats.acked.add(res["id"])
            if not closed_loop:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        await http.close()


async def check_db(owner_url: str, cid, acked: set[str]) -> tuple[int, int, int]:
    """(rows in the visit table, ids acknowledged but missing, rows with a doubled id)."""
    engine = create_async_engine(owner_url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id::text FROM visit WHERE campaign_id = :c"), {"c": cid}
        )
        ids = [r[0] for r in rows]
    await engine.dispose()
    stored = Counter(ids)
    missing = len(acked - set(stored))
    doubled = sum(n - 1 for n in stored.values() if n > 1)
    return len(ids), missing, doubled


def _cpu_seconds(root: int) -> float:
    """CPU time (user + system, seconds) of a process and its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def _postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.pgdata / "postmaster.pid").read_text().split()[0])


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, in ms."""
    return float(np.percentile(np.asarray(values), q) * 1000) if values else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    """Run the whole benchmark; returns the exit code."""
    base_dir = Path(tempfile.mkdtemp(prefix="porte-bench-visits-", dir="/tmp"))
    os.chmod(base_dir, 0o755)
    cluster = Cluster(base_dir / "db", _free_port())
    proc = None
    try:
        print("starting a throwaway PostGIS cluster and migrating...", flush=True)
        cluster.start()
        cluster.create_database("bench")
        owner_url, app_url = cluster.url("owner", "bench"), cluster.url("app", "bench")
        await asyncio.to_thread(upgrade, owner_url)
        seeded = await seed(owner_url, args.phones, args.doors_per_phone)
        print(f"seeded {seeded['doors']:,} SYNTHETIC doors, {args.phones} volunteer accounts")
        port = _free_port()
        log = base_dir / "server.log"
        proc = start_server(app_url, owner_url, port, args.workers, log)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc, log)
        settings = Settings(secret_key=SECRET, database_url=app_url, owner_database_url=owner_url)
        phones = await prepare(base, seeded, settings, args.phones, args.doors_per_phone)
        mode = "closed loop" if args.closed_loop else f"a batch per phone every {args.interval} s"
        print(
            f"service up on {base} ({args.workers} worker(s)); {args.phones} phones assigned; "
            + mode
            + f", {args.batch} visits per batch, {args.replays:.0%} replays, {args.seconds:.0f} s",
            flush=True,
        )
        stats = Stats()
        pg_pid = _postmaster_pid(cluster)
        cpu0 = (_cpu_seconds(proc.pid), _cpu_seconds(pg_pid), time.process_time())
        start = time.monotonic()
        until = start + args.seconds
        rng = random.Random(11)
        tasks = [
            phone(
                port,
                seeded["campaign_id"],
                h,
                d,
                stats,
                batch=args.batch,
                interval=args.interval,
                replay_share=args.replays,
                until=until,
                closed_loop=args.closed_loop,
                rng=random.Random(rng.random()),
            )
            for h, d in phones
        ]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.seconds + 60)
        elapsed = time.monotonic() - start
        cpu_app = _cpu_seconds(proc.pid) - cpu0[0]
        cpu_pg = _cpu_seconds(pg_pid) - cpu0[1]
        cpu_phones = time.process_time() - cpu0[2]
        stored, lost, doubled = await check_db(owner_url, seeded["campaign_id"], stats.acked)
        created_twice = sum(1 for n in stats.created_ids.values() if n > 1)
        duplicates = doubled + created_twice + max(0, stored - len(stats.acked))
        rate = stats.visits_posted / elapsed
        new_rate = stats.results["created"] / elapsed
        p50, p95, p99 = (pct(stats.latencies, q) for q in (50, 95, 99))
        print(
            f"\nrequests: {len(stats.latencies):,} in {elapsed:.1f} s "
            f"({len(stats.latencies) / elapsed:.0f}/s), replayed batches {stats.replays:,}, "
            f"errors {dict(stats.errors) or 0}"
        )
        print(
            f"visits: {rate:,.0f}/s posted and answered ({new_rate:,.0f}/s new); results "
            f"{dict(stats.results)}"
        )
        print(
            f"latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max "
            f"{max(stats.latencies) * 1000 if stats.latencies else float('nan'):.1f} ms"
        )
        # Where the tail comes from: the first seconds (new connections, first plans) vs after.
        if stats.started:
            t_first = min(stats.started)
            by_second: dict[int, list[float]] = {}
            for t, lat in zip(stats.started, stats.latencies, strict=True):
                by_second.setdefault(int(t - t_first), []).append(lat)
            worst = sorted(by_second, key=lambda k: pct(by_second[k], 99), reverse=True)[:3]
            later = [
                lat
                for t, lat in zip(stats.started, stats.latencies, strict=True)
                if t - t_first >= 5
            ]
            print(
                "latency tail: worst seconds "
                + ", ".join(f"t={k}s p99 {pct(by_second[k], 99):.0f} ms" for k in worst)
                + (f"; p99 after the first 5 s {pct(later, 99):.1f} ms" if later else "")
            )
        print(
            f"database: {stored:,} visits stored for {len(stats.acked):,} acknowledged ids; "
            f"duplicates {duplicates} (must be 0), lost {lost} (must be 0)"
        )
        n_req = max(1, len(stats.latencies))
        print(
            f"CPU per request: service {cpu_app / n_req * 1000:.1f} ms, PostgreSQL "
            f"{cpu_pg / n_req * 1000:.1f} ms (load-independent cost; 2 cores give ~"
            f"{2 / ((cpu_app + cpu_pg) / n_req) * args.batch if cpu_app + cpu_pg else 0:,.0f} "
            "visits/s if nothing else runs); the simulated phones used "
            f"{cpu_phones / n_req * 1000:.1f} ms per request"
        )
        ok_rate, ok_p99 = rate >= 1000, p99 < 100
        print(
            f"targets: >= 1,000 visits/s: {rate / 1000:.2f}x {'OK' if ok_rate else 'MISSED'}; "
            f"p99 < 100 ms: {p99 / 100:.2f}x of the limit {'OK' if ok_p99 else 'MISSED'}"
        )
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1):
            print(
                f"note: load average {load:.1f} on {os.cpu_count()} cores during the run "
                "(other work on the machine inflates latency)"
            )
        return 0 if duplicates == 0 and lost == 0 and not stats.errors else 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        cluster.destroy()
        shutil.rmtree(base_dir, ignore_errors=True)


def main() -> None:
    """Parse options and run."""
    ap = argparse.ArgumentParser(description="Visits benchmark over 127.0.0.1 (see module doc).")
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", type=float, default=0.8, help="seconds between a phone's batches")
    ap.add_argument("--replays", type=float, default=0.10, help="share of replayed batches")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--doors-per-phone", type=int, default=40)
    ap.add_argument(
        "--closed-loop",
        action="store_true",
        help="phones post again as soon as answered (finds the ceiling)",
    )
    args = ap.parse_args()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
