"""Soak: a mixed campaign day against the real service, for a bounded time.

    bench/soak/run.sh                  (10 minutes; same as .venv/bin/python -m bench.soak)
    bench/soak/run.sh --minutes 60     (a long run; --help for the other options)

All on 127.0.0.1, thrown away at the end:
1. a private PostGIS cluster in a temporary directory, migrated, with the bundled sample (real
   92-13 tiles, polling stations and results; SYNTHETIC 92-13 doors; real Bruz doors);
2. one campaign with an organiser, an analyst and N volunteer phones, each assigned a turf cut
   through the API; a second campaign whose election is two months past, holding SYNTHETIC
   visits that the purge in the middle of the run deletes;
3. the service started as in production: `porte serve --workers 2`;
4. for the whole run, at once:
   - phones record visits in small batches, replay an earlier batch now and then (a lost
     acknowledgement), go offline for a while and then send their backlog in batches of 200, and
     honour 503/429 + Retry-After with jitter like the real page (static/m/app.js);
   - organisers pan the door map (vector tiles at z14-16), read progress and the turf list;
   - analysts rank districts (the three presets) and export priority zones (CSV, GeoJSON,
     GeoPackage);
   - at 40 % of the run `porte import addresses` loads 20,000 SYNTHETIC doors among the
     campaign's (the allocation refresh included), at 70 % `porte purge` runs;
5. every minute: requests, throughput and p99 latency per kind, errors by status, the RSS of each
   service worker and the memory of PostgreSQL (PSS summed over its processes);
6. at the end, once every phone has sent its queue: lost = acknowledged visits missing from the
   database, doubled = visits stored or acknowledged as created twice; both must be 0, and memory
   growth must flatten (second half of the run against the first), or the run fails (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.migrate import upgrade
from app.pgcluster import Cluster
from app.security import access_token, hash_password

PORTE = str(Path(sys.executable).with_name("porte"))
SECRET = "bench-soak-secret-" + "x" * 32
OUTCOMES = ["not_home"] * 5 + ["talked"] * 2 + ["refused", "moved", "no_access"]
MB = 1024 * 1024
STAFF = ("organiser", "analyst")


def bearer(settings: Settings, user_id: uuid.UUID) -> dict[str, str]:
    """The Authorization header of a new account (token version 0)."""
    return {"Authorization": f"Bearer {access_token(settings, user_id, version=0)}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- HTTP client (cheap per call)


class Http:
    """A minimal HTTP/1.1 keep-alive client: the simulated users share two cores with the
    service, and a full client costs more CPU per request than the service itself."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); raises OSError/IncompleteReadError on a broken connection.

        A kept-alive connection the server closed while idle (uvicorn: after 5 s) is opened
        again and the request sent once more, as browsers do (it was never read)."""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        message = head.encode() + b"\r\n" + (body or b"")
        for attempt in (1, 2):
            reused = self.writer is not None
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(message)
                line = await self.reader.readline()
            except ConnectionError:
                line = b""
            if line:
                break
            await self.close()
            if not reused or attempt == 2:
                raise ConnectionResetError("the server closed the connection")
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").endswith("chunked"):
            data = b""
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ---------------------------------------------------------------- what everyone saw


@dataclass
class Stats:
    """Latencies, statuses and visit acknowledgements, per minute and in all."""

    started: float = field(default_factory=time.monotonic)
    minute_lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    minute_err: Counter = field(default_factory=Counter)
    total_lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    total_err: Counter = field(default_factory=Counter)
    acked: set[str] = field(default_factory=set)
    created: Counter = field(default_factory=Counter)
    visits_sent: int = 0
    replays: int = 0
    offline_bursts: int = 0
    retry_after_waits: int = 0
    events: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, status: int | str) -> None:
        if isinstance(status, int) and (200 <= status < 300 or status == 304):  # 204: empty tile
            self.minute_lat[kind].append(seconds)
            self.total_lat[kind].append(seconds)
        else:
            self.minute_err[(kind, status)] += 1
            self.total_err[(kind, status)] += 1


def p99(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 99) * 1000) if values else float("nan")


async def timed(stats: Stats, kind: str, http: Http, method: str, path: str, body=None):
    """One request, recorded; (status, headers, body) or None on a broken connection."""
    t0 = time.perf_counter()
    try:
        status, headers, data = await http.request(method, path, body)
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        stats.record(kind, 0, type(exc).__name__)
        await http.close()
        return None
    stats.record(kind, time.perf_counter() - t0, status)
    return status, headers, data


def retry_wait(headers: dict[str, str], failures: int) -> float:
    """The page's policy: Retry-After plus up to 50 % jitter, else 2 s doubling to 5 min."""
    asked = headers.get("retry-after")
    base = float(asked) if asked and asked.isdigit() else min(300.0, 2.0 * 2 ** (failures - 1))
    return base * (1 + random.random() * 0.5)


# ---------------------------------------------------------------- the simulated people


class Phone:
    """A volunteer's phone: a queue of visits, sent in batches, replays, offline spells."""

    def __init__(self, port: int, cid, headers: dict, doors: list[int], rng: random.Random):
        self.http = Http(port, headers)
        self.path = f"/campaigns/{cid}/visits"
        self.doors, self.rng = doors, rng
        self.queue: list[dict] = []
        self.sent: list[list[dict]] = []
        self.offline_until = 0.0
        self.retry_at = 0.0
        self.failures = 0

    def knock(self, n: int) -> None:
        at = datetime.now(UTC).isoformat()
        for _ in range(n):
            self.queue.append(
                {
                    "id": str(uuid.uuid4()),
                    "door": self.rng.choice(self.doors),
                    "outcome": self.rng.choice(OUTCOMES),
                    "visited_at": at,
                }
            )

    async def send(self, stats: Stats, batch: list[dict], replay: bool = False) -> bool:
        body = json.dumps({"visits": batch}).encode()
        got = await timed(stats, "visits", self.http, "POST", self.path, body)
        if got is None or got[0] != 200:
            self.failures += 1
            wait = retry_wait(got[1] if got else {}, self.failures)
            if got is not None and "retry-after" in got[1]:
                stats.retry_after_waits += 1
            self.retry_at = time.monotonic() + wait
            return False
        self.failures = 0
        stats.visits_sent += len(batch)
        for res in json.loads(got[2])["results"]:
            if res["result"] == "created":
                stats.created[res["id"]] += 1
            if res["result"] in ("created", "already_recorded"):
                stats.acked.add(res["id"])
        if not replay:
            self.sent.append(batch)
        return True

    async def flush(self, stats: Stats) -> None:
        while self.queue and time.monotonic() >= self.retry_at:
            batch = self.queue[:200]
            if not await self.send(stats, batch):
                return
            del self.queue[: len(batch)]

    async def run(self, stats: Stats, until: float, interval: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, interval))
        while time.monotonic() < until:
            self.knock(self.rng.randint(1, 9))
            now = time.monotonic()
            if now >= self.offline_until and self.rng.random() < 0.01:
                self.offline_until = now + self.rng.uniform(15, 60)  # a street without signal
                stats.offline_bursts += 1
            if now >= self.offline_until:
                if self.sent and self.rng.random() < 0.1 and now >= self.retry_at:
                    stats.replays += 1  # the phone lost an acknowledgement: sends it again
                    await self.send(stats, self.rng.choice(self.sent), replay=True)
                await self.flush(stats)
            await asyncio.sleep(interval * self.rng.uniform(0.7, 1.3))

    async def drain(self, stats: Stats, within: float) -> None:
        """Back online at the end: send everything left (honouring Retry-After)."""
        self.offline_until = 0
        deadline = time.monotonic() + within
        while self.queue and time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, self.retry_at - time.monotonic()))
            await self.flush(stats)
        await self.http.close()


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


async def organiser(port, cid, headers, bbox, stats: Stats, until: float, rng: random.Random):
    """Pans the door map, reads progress and the turf list."""
    http = Http(port, headers)
    x0, y0, x1, y1 = bbox
    n = 0
    while time.monotonic() < until:
        n += 1
        z = rng.choice([14, 15, 16, 16])
        tx, ty = _tile(rng.uniform(x0, x1), rng.uniform(y0, y1), z)
        await timed(stats, "tiles", http, "GET", f"/campaigns/{cid}/tiles/doors/{z}/{tx}/{ty}.mvt")
        if n % 20 == 0:
            await timed(stats, "progress", http, "GET", f"/campaigns/{cid}/progress")
        if n % 40 == 0:
            await timed(stats, "turfs", http, "GET", f"/campaigns/{cid}/turfs")
        await asyncio.sleep(rng.uniform(0.15, 0.35))
    await http.close()


async def analyst(port, cid, headers, stats: Stats, until: float, rng: random.Random):
    """Ranks districts every few seconds, exports priority zones now and then."""
    http = Http(port, headers)
    next_export = time.monotonic() + rng.uniform(10, 40)
    while time.monotonic() < until:
        preset = rng.choice(["mobilisation", "persuasion", "coverage"])
        await timed(stats, "ranking", http, "GET", f"/campaigns/{cid}/ranking?preset={preset}")
        if time.monotonic() >= next_export:
            ext = rng.choice(["csv", "geojson", "gpkg"])
            path = f"/campaigns/{cid}/exports/priority-zones.{ext}"
            await timed(stats, "exports", http, "GET", path)
            next_export = time.monotonic() + rng.uniform(30, 60)
        await asyncio.sleep(rng.uniform(3, 7))
    await http.close()


# ---------------------------------------------------------------- set-up


async def seed(owner_url: str, phones: int) -> dict:
    """Accounts, the live campaign, and a past campaign with SYNTHETIC visits to purge."""
    engine = create_async_engine(owner_url)
    pw = hash_password(uuid.uuid4().hex)
    users: dict[str, uuid.UUID] = {}
    async with engine.begin() as conn:
        for role in ["organiser", "analyst"] + [f"phone{i}" for i in range(phones)]:
            users[role] = (
                await conn.execute(
                    text(
                        "INSERT INTO app_user (email, password_hash) VALUES (:e, :h) RETURNING id"
                    ),
                    {"e": f"{role}@soak.invalid", "h": pw},
                )
            ).scalar_one()
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date) VALUES ('Soak (SYNTHETIC)', "
                    ":d) RETURNING id"
                ),
                {"d": date.today() + timedelta(days=90)},
            )
        ).scalar_one()
        for role, uid in users.items():
            await conn.execute(
                text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r)"),
                {"c": cid, "u": uid, "r": role if role in STAFF else "volunteer"},
            )
        past = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date) VALUES ('Past (SYNTHETIC)', :d) "
                    "RETURNING id"
                ),
                {"d": date.today() - timedelta(days=70)},
            )
        ).scalar_one()
        rnd = (
            await conn.execute(
                text(
                    "INSERT INTO canvass_round (campaign_id, number, name, started_at) VALUES "
                    "(:c, 1, 'Round 1', now() - interval '100 days') RETURNING id"
                ),
                {"c": past},
            )
        ).scalar_one()
        old = await conn.execute(
            text(
                "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, visited_at) "
                "SELECT :c, gen_random_uuid(), a.id, :r, 'not_home', "
                "now() - interval '80 days' FROM address a, generate_series(1, 3) "
                "WHERE a.source = 'synthetic'"
            ),
            {"c": past, "r": rnd},
        )
    await engine.dispose()
    return {"campaign_id": cid, "users": users, "past_visits": old.rowcount}


def synthetic_doors(path: Path, n: int, bbox: list[float], seed: int = 5) -> Path:
    """A BAN-format CSV of ``n`` SYNTHETIC doors inside ``bbox`` (lon/lat)."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(bbox[0], bbox[2], n)
    lat = rng.uniform(bbox[1], bbox[3], n)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id;numero;rep;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n")
        for i in range(n):
            fh.write(
                f"SOAK_{i};{1 + i % 200};;SYNTHETIC rue {i // 40};99200;99200;SYNTHETIC;"
                f"{lon[i]:.7f};{lat[i]:.7f}\n"
            )
    return path


def server_env(app_url: str, owner_url: str, port: int, minutes: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTE_")}
    env.update(
        DATABASE_URL=app_url,
        OWNER_DATABASE_URL=owner_url,
        PORTE_MODE="production",
        PORTE_SECRET_KEY=SECRET,
        PORTE_DATA_KEYS=json.dumps({"s1": base64.b64encode(b"s" * 32).decode()}),
        PORTE_DATA_KEY_ID="s1",
        PORTE_HMAC_KEY="bench-soak-hmac-" + "h" * 32,
        PORTE_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PORTE_ACCESS_TOKEN_MINUTES=str(int(minutes) + 60),
        PORTE_BASEMAP="/nonexistent/soak.pmtiles",
    )
    return env


async def api_json(http: Http, method: str, path: str, body=None, ok=(200, 201)):
    status, _, data = await http.request(
        method, path, None if body is None else json.dumps(body).encode()
    )
    if status not in ok:
        raise SystemExit(f"{method} {path}: {status} {data[:500]!r}")
    return json.loads(data)


async def prepare(port: int, seeded: dict, settings: Settings, phones: int) -> tuple[list, list]:
    """Cut polling stations into turfs and assign one to each phone, through the API."""
    cid, users = seeded["campaign_id"], seeded["users"]
    org = Http(port, bearer(settings, users["organiser"]))
    districts = (await api_json(org, "GET", "/districts?limit=1000"))["features"]
    codes = [f["properties"]["code"] for f in districts if f["properties"].get("doors")]
    turfs: list = []
    while len(turfs) < phones and codes:
        take, codes = codes[:4], codes[4:]
        cut = await api_json(
            org, "POST", f"/campaigns/{cid}/cut", {"districts": take, "doors_per_turf": 80}
        )
        turfs += cut["turfs"]
    if len(turfs) < phones:
        raise SystemExit(f"only {len(turfs)} turfs for {phones} phones")
    out, points = [], []
    for i in range(phones):
        uid = users[f"phone{i}"]
        a = await api_json(
            org,
            "POST",
            f"/campaigns/{cid}/assignments",
            {"turf_id": turfs[i]["id"], "volunteer_user_id": str(uid)},
        )
        headers = bearer(settings, uid)
        mine = Http(port, headers)
        fc = await api_json(mine, "GET", f"/campaigns/{cid}/assignments/{a['id']}/doors")
        await mine.close()
        out.append((headers, [int(f["id"]) for f in fc["features"]]))
        points += [f["geometry"]["coordinates"] for f in fc["features"]]
    await org.close()
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return out, [min(lons), min(lats), max(lons), max(lats)]


# ---------------------------------------------------------------- memory


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def workers_rss(server_pid: int) -> dict[int, float]:
    """RSS (MB) of each uvicorn worker of `porte serve --workers N`."""
    out = {}
    for pid in _children(server_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmd:
            out[pid] = _status_kb(pid, "VmRSS") / 1024
    return out


def postgres_pss(cluster: Cluster) -> float:
    """PostgreSQL's memory (MB): proportional set size summed over the postmaster and its
    processes (shared buffers counted once, not once per backend)."""
    root = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    return sum(_pss_kb(p) for p in [root, *_children(root)]) / 1024


def flattened(series: list[float], allowance: float) -> tuple[bool, float, float]:
    """(ok, growth over the first half, growth over the second half): memory that keeps growing
    in the second half by more than ``allowance`` MB and more than half its first-half growth
    is a leak."""
    if len(series) < 3:
        return True, 0.0, 0.0
    mid = len(series) // 2
    first, second = series[mid] - series[0], series[-1] - series[mid]
    return second <= max(allowance, 0.5 * max(first, 0.0)), first, second


# ---------------------------------------------------------------- the run


def report_minute(minute: int, stats: Stats, seconds: float, rss: dict, pg: float) -> None:
    kinds = ["visits", "tiles", "progress", "turfs", "ranking", "exports"]
    cells = []
    for k in kinds:
        lat = stats.minute_lat.get(k, [])
        cells.append(f"{k} {len(lat) / seconds:6.1f}/s p99 {p99(lat):7.1f} ms")
    errors = ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(stats.minute_err.items(), key=str))
    mem = ", ".join(f"worker {pid} {mb:.0f} MB" for pid, mb in sorted(rss.items()))
    load = os.getloadavg()[0]
    print(f"[{minute:>3} min] " + " | ".join(cells[:3]), flush=True)
    print("          " + " | ".join(cells[3:]), flush=True)
    print(
        f"          errors: {errors or 'none'} | {mem} | PostgreSQL {pg:.0f} MB (PSS) | "
        f"load {load:.1f}",
        flush=True,
    )
    stats.minute_lat.clear()
    stats.minute_err.clear()


def start_server(port: int, workers: int, env: dict, folder: Path) -> subprocess.Popen:
    """`porte serve` in its own process group, its output in folder/server.log."""
    log = (folder / "server.log").open("w")
    return subprocess.Popen(
        [PORTE, "serve", "--port", str(port), "--workers", str(workers)],
        env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


async def run_command(args: list[str], env: dict, log: Path, stats: Stats, label: str) -> None:
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        PORTE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    await asyncio.to_thread(log.write_bytes, out)
    took = time.monotonic() - t0
    tail = out.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    line = f"{label}: exit {proc.returncode} in {took:.1f} s ({tail[0][:160]})"
    stats.events.append(line)
    print(f"          >> {line}", flush=True)
    if proc.returncode != 0:
        stats.total_err[(label, f"exit {proc.returncode}")] += 1


async def main_async(args: argparse.Namespace) -> int:
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):  # stopped early: still clean up (finally below)
        asyncio.get_running_loop().add_signal_handler(sig, main_task.cancel)
    base_dir = Path(tempfile.mkdtemp(prefix="porte-soak-", dir="/tmp"))
    os.chmod(base_dir, 0o755)
    cluster = Cluster(base_dir / "db", _free_port())
    server = None
    try:
        print("starting a throwaway PostGIS cluster, migrating, loading the sample...", flush=True)
        cluster.start()
        cluster.create_database("soak")
        owner_url, app_url = cluster.url("owner", "soak"), cluster.url("app", "soak")
        await asyncio.to_thread(upgrade, owner_url)
        from app.services.reference.imports.sample import load_sample

        await asyncio.to_thread(load_sample, owner_url, quiet=True)
        seeded = await seed(owner_url, args.phones)
        port = _free_port()
        env = server_env(app_url, owner_url, port, args.minutes)
        server = start_server(port, args.workers, env, base_dir)
        probe = Http(port, {})
        ready_by = time.monotonic() + 180
        while True:
            try:
                if (await probe.request("GET", "/health"))[0] == 200:
                    break
            except (OSError, ValueError, asyncio.IncompleteReadError):
                await probe.close()
            log_text = (base_dir / "server.log").read_text()
            if server.poll() is not None or time.monotonic() > ready_by:
                raise SystemExit("porte serve did not come up:\n" + log_text[-3000:])
            await asyncio.sleep(0.3)
        await probe.close()
        settings = Settings(secret_key=SECRET, database_url=app_url, owner_database_url=owner_url)
        phones_setup, bbox = await prepare(port, seeded, settings, args.phones)
        cid, users = seeded["campaign_id"], seeded["users"]
        doors_file = synthetic_doors(base_dir / "soak-synthetic-doors.csv", 20_000, bbox)
        print(
            f"service up: `porte serve --workers {args.workers}` on 127.0.0.1:{port}; "
            f"{args.phones} phones, {args.organisers} organisers, {args.analysts} analysts; "
            f"{seeded['past_visits']:,} SYNTHETIC visits of a past campaign to purge; "
            f"{args.minutes:g} min; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )

        stats = Stats()
        start = time.monotonic()
        until = start + args.minutes * 60
        rng = random.Random(args.seed)
        phones = [Phone(port, cid, h, d, random.Random(rng.random())) for h, d in phones_setup]
        org_h = bearer(settings, users["organiser"])
        ana_h = bearer(settings, users["analyst"])
        tasks = [asyncio.create_task(p.run(stats, until, args.interval)) for p in phones]
        tasks += [
            asyncio.create_task(organiser(port, cid, org_h, bbox, stats, until, random.Random(i)))
            for i in range(args.organisers)
        ]
        tasks += [
            asyncio.create_task(analyst(port, cid, ana_h, stats, until, random.Random(100 + i)))
            for i in range(args.analysts)
        ]
        cmd_env = {k: v for k, v in env.items() if k != "PORTE_PUBLIC_BASE_URL"}
        events = [
            (0.4, ["import", "addresses", str(doors_file), "--quiet"], "import 20,000 doors"),
            (0.7, ["purge"], "purge"),
        ]
        rss_series: dict[int, list[float]] = defaultdict(list)
        pg_series: list[float] = []
        minute = 0
        pending_events = list(events)
        while time.monotonic() < until:
            next_minute = start + (minute + 1) * 60
            while time.monotonic() < min(next_minute, until):
                frac = (time.monotonic() - start) / (until - start)
                while pending_events and frac >= pending_events[0][0]:
                    _, cmd, label = pending_events.pop(0)
                    tasks.append(
                        asyncio.create_task(
                            run_command(cmd, cmd_env, base_dir / f"{cmd[0]}.log", stats, label)
                        )
                    )
                await asyncio.sleep(0.5)
            minute += 1
            rss = workers_rss(server.pid)
            pg = postgres_pss(cluster)
            for pid, mb in rss.items():
                rss_series[pid].append(mb)
            pg_series.append(pg)
            span = min(60.0, time.monotonic() - (next_minute - 60))
            report_minute(minute, stats, span, rss, pg)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
        await asyncio.gather(*(p.drain(stats, 120) for p in phones))
        elapsed = time.monotonic() - start

        engine = create_async_engine(owner_url)
        async with engine.connect() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    text("SELECT id::text FROM visit WHERE campaign_id = :c"), {"c": cid}
                )
            ]
            past_left = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM visit v JOIN campaign c ON c.id = v.campaign_id "
                        "WHERE c.name = 'Past (SYNTHETIC)'"
                    )
                )
            ).scalar_one()
        await engine.dispose()
        stored = Counter(ids)
        lost = len(stats.acked - set(stored))
        doubled = sum(n - 1 for n in stored.values() if n > 1) + sum(
            n - 1 for n in stats.created.values() if n > 1
        )
        unsent = sum(len(p.queue) for p in phones)
        print(f"\n==== soak: {elapsed / 60:.1f} min", flush=True)
        for kind, lat in sorted(stats.total_lat.items()):
            rate = len(lat) / elapsed
            print(f"{kind:>9}: {len(lat):>8,} ok, {rate:7.1f}/s, p99 {p99(lat):7.1f} ms")
        errs = ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(stats.total_err.items(), key=str))
        print(f"errors by kind and status: {errs or 'none'}")
        print(
            f"phones: {stats.visits_sent:,} visits sent, {stats.replays:,} replayed batches, "
            f"{stats.offline_bursts:,} offline spells, {stats.retry_after_waits:,} waits on "
            f"Retry-After; {unsent:,} visits still queued at the end (must be 0)"
        )
        for line in stats.events:
            print(f"event: {line}")
        print(f"purge: {past_left:,} visits of the past campaign left (must be 0)")
        ok = True
        for pid, series in sorted(rss_series.items()):
            good, first, second = flattened(series, args.leak_mb)
            ok &= good
            print(
                f"memory: worker {pid}: {series[0]:.0f} -> {series[-1]:.0f} MB (first half "
                f"{first:+.0f}, second half {second:+.0f}): {'flat' if good else 'LEAK'}"
            )
        good, first, second = flattened(pg_series, args.leak_mb * 3)
        ok &= good
        print(
            f"memory: PostgreSQL: {pg_series[0]:.0f} -> {pg_series[-1]:.0f} MB PSS (first half "
            f"{first:+.0f}, second half {second:+.0f}): {'flat' if good else 'LEAK'}"
        )
        print(
            f"database: {len(stored):,} visits stored for {len(stats.acked):,} acknowledged; "
            f"lost = {lost}, doubled = {doubled} (both must be 0)"
        )
        ok &= lost == 0 and doubled == 0 and unsent == 0 and past_left == 0
        ok &= not any(k[1] == "exit 1" for k in stats.total_err)
        print("RESULT: " + ("PASS" if ok else "FAIL"), flush=True)
        return 0 if ok else 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        cluster.destroy()
        if not args.keep:
            shutil.rmtree(base_dir, ignore_errors=True)
        else:
            print(f"kept {base_dir} (server.log, import.log, purge.log)")


def main() -> None:
    ap = argparse.ArgumentParser(description="Soak: a mixed campaign day (see module doc).")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--phones", type=int, default=20)
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between a phone's visits")
    ap.add_argument("--organisers", type=int, default=3)
    ap.add_argument("--analysts", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="`porte serve --workers`")
    ap.add_argument("--leak-mb", type=float, default=24.0, help="growth allowed per worker (MB)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--keep", action="store_true", help="keep the logs in the temporary folder")
    args = ap.parse_args()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
