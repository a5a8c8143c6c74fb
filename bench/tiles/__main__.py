"""Door-tile benchmark: this service against tipg on the same table (one command).

    .venv/bin/python -m bench.tiles            (or bench/tiles/run.sh)

Builds a SYNTHETIC département of doors in a throwaway PostGIS cluster: the real Bruz BAL doors of
the sample repeated on an 8 x 8 grid of offsets (every copy is labelled source='synthetic',
source_file='synthetic-bench-tiles'), ~370,000 doors. A campaign gets one round with 15 % of the
doors visited and 1 % flagged. Then it serves the door layer at z16 and z14 from this service
(organiser role: every door with its status, RLS on, audited) as configured by default (with its
door-tile cache), from this service with the cache off (PORTE_TILE_CACHE_MB=0: every tile built),
and from tipg (`tipg.main:app`, the same `address` table, its defaults), each under uvicorn with the
same number of workers, and drives them with wrk (16 connections) over the densest tiles after an
unmeasured warm-up of every server alike. A last z16 run measures the organiser map while visits
arrive (--live-visits per second; each one invalidates the campaign's cached tiles). It prints
requests/s, p50/p99 latency and bytes per tile for each, the ratios, and checks the targets on the
default configuration: >= 2x tipg at z16, p99 < 50 ms, z14 tile < 50 kB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SECRET = "bench-secret-key-" + "x" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def build(owner_url: str, grid: int) -> dict:
    """Load the sample, add the synthetic département, a campaign, visits; pick the tiles."""
    from app.services.reference.imports.sample import load_sample_async

    print("Loading the sample (real Bruz doors, synthetic 92-13 doors)...", flush=True)
    await load_sample_async(owner_url, quiet=True)
    engine = create_async_engine(owner_url)
    async with engine.begin() as conn:
        print(f"Building the SYNTHETIC département: Bruz doors x {grid**2} copies...", flush=True)
        await conn.execute(
            text(
                "INSERT INTO address (ban_id, numero, suffixe, nom_voie, code_postal, code_insee, "
                "nom_commune, lon, lat, households, source, source_file) "
                "SELECT 'synthetic-bench-' || i || '-' || j || '-' || a.id, a.numero, a.suffixe, "
                "a.nom_voie, a.code_postal, a.code_insee, a.nom_commune || ' (synthetic copy)', "
                "a.lon + 0.08 * i, a.lat + 0.09 * j, a.households, 'synthetic', "
                "'synthetic-bench-tiles' FROM address a, generate_series(0, :g - 1) i, "
                "generate_series(0, :g - 1) j WHERE a.code_insee = '35047' AND a.source <> "
                "'synthetic' AND (i, j) <> (0, 0)"
            ),
            {"g": grid},
        )
        doors = (await conn.execute(text("SELECT count(*) FROM address"))).scalar_one()
        user = (
            await conn.execute(
                text(
                    "INSERT INTO app_user (email, password_hash) VALUES "
                    "('bench-organiser@example.test', 'x') RETURNING id"
                )
            )
        ).scalar_one()
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date) VALUES "
                    "('Synthetic tile benchmark', '2027-06-11') RETURNING id"
                )
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, 'organiser')"
            ),
            {"c": cid, "u": user},
        )
        rid = (
            await conn.execute(
                text("INSERT INTO canvass_round (campaign_id, number) VALUES (:c, 1) RETURNING id"),
                {"c": cid},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, visited_at) "
                "SELECT :c, gen_random_uuid(), id, :r, 'not_home', now() FROM address "
                "WHERE abs(hashtext(id::text)) % 100 < 15"
            ),
            {"c": cid, "r": rid},
        )
        await conn.execute(
            text(
                "INSERT INTO door_flag (campaign_id, address_id) SELECT :c, id FROM address "
                "WHERE abs(hashtext(id::text || 'f')) % 100 = 0"
            ),
            {"c": cid},
        )
        tiles = {}
        for z, n in ((16, 64), (14, 16)):
            rows = (
                await conn.execute(
                    text(
                        "SELECT floor((lon + 180) / 360 * 2 ^ :z)::int AS x, "
                        "floor((1 - ln(tan(radians(lat)) + 1 / cos(radians(lat))) / pi()) / 2 "
                        "* 2 ^ :z)::int AS y, count(*) FROM address GROUP BY 1, 2 "
                        "ORDER BY 3 DESC LIMIT :n"
                    ),
                    {"z": z, "n": n},
                )
            ).all()
            tiles[z] = [(z, r.x, r.y, r.count) for r in rows]
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return {"doors": doors, "campaign": cid, "user": user, "tiles": tiles}


def start(cmd: list[str], env: dict, port: int, health: str) -> subprocess.Popen:
    """Start a server and wait until it answers."""
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[2]} stopped at start:\n{proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{cmd} did not answer within 60 s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started by start() (its whole process group: uvicorn and its workers)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def tile_bytes(base: str, paths: list[str], headers: dict) -> list[int]:
    """Size of each tile (uncompressed, as wrk receives it); also warms the caches."""
    sizes = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for p in paths:
            r = c.get(p, headers={"Accept-Encoding": "identity"})
            if r.status_code not in (200, 204):
                raise SystemExit(f"{base}{p} answered {r.status_code}: {r.text[:300]}")
            sizes.append(len(r.content))
    return sizes


LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {%s})
end
"""


def wrk(base: str, paths: list[str], headers: dict, seconds: int, connections: int) -> dict:
    """Drive one server with wrk; requests/s and latency percentiles (ms)."""
    lua = LUA % (
        ", ".join(f'"{p}"' for p in paths),
        ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


async def bare_sql(app_url: str, cid: str, tiles: list, seconds: int, clients: int) -> float:
    """Requests/s of the door-tile SQL alone (asyncpg, `clients` connections, same transaction
    shape as the service: tenant set locally, then the tile): the ceiling without HTTP/Python."""
    import asyncpg

    from app.services.field.tiles import doors_sql

    query = doors_sql(grid=False, volunteer=False)
    done = 0
    stop_at = time.monotonic() + seconds

    async def client(i: int) -> None:
        nonlocal done
        conn = await asyncpg.connect(_plain(app_url), server_settings={"jit": "off"})
        try:
            k = i
            while time.monotonic() < stop_at:
                z, x, y, _ = tiles[k % len(tiles)]
                k += 1
                async with conn.transaction():
                    await conn.execute("SELECT set_config('porte.campaign_id', $1, true)", cid)
                    await conn.fetchrow(query, uuid.UUID(cid), z, x, y, 4096, 64, 20000)
                done += 1
        finally:
            await conn.close()

    start_t = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return done / (time.monotonic() - start_t)


OURS = "porte (organiser, RLS, status)"
COLD = "porte, tile cache off"
LIVE = "porte, visits arriving"
REF = "tipg (defaults)"


def _print_run(name: str, r: dict) -> None:
    sizes = (
        f"  tile {r['bytes_mean'] / 1000:7.1f} kB mean, {r['bytes_max'] / 1000:7.1f} kB max"
        if "bytes_mean" in r
        else ""
    )
    print(
        f"  {name:40s} {r['rps']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms"
        + sizes
        + (f"  ({r['errors']} non-2xx!)" if r["errors"] else ""),
        flush=True,
    )


class Trickle:
    """Record ``rate`` visits per second in the campaign (as the service role, tenant set, like
    the visits API) in a background thread, for as long as the ``with`` block lasts."""

    def __init__(self, app_url: str, cid: object, rate: float):
        self.url, self.cid, self.rate, self.done = _plain(app_url), str(cid), rate, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f"SELECT set_config('porte.campaign_id', '{self.cid}', false)")
            doors = [r[0] for r in await conn.fetch("SELECT id FROM address LIMIT 20000")]
            rid = await conn.fetchval("SELECT id FROM canvass_round ORDER BY number DESC LIMIT 1")
            while not self._stop.is_set():
                await conn.execute(
                    "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, "
                    "visited_at) VALUES ($1, gen_random_uuid(), $2, $3, 'not_home', now())",
                    uuid.UUID(self.cid),
                    random.choice(doors),
                    rid,
                )
                self.done += 1
                await asyncio.sleep(1 / self.rate)
        finally:
            await conn.close()

    def __enter__(self) -> Trickle:
        if self.rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def main() -> None:
    """Build, serve, measure, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=8, help="copies per side (8 -> ~370k doors)")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers, same for both")
    ap.add_argument(
        "--warmup", type=int, default=2, help="unmeasured wrk seconds before each measured run"
    )
    ap.add_argument(
        "--live-visits", type=float, default=1.0, help="visits/s during the 'visits arriving' run"
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: sudo apt-get install -y wrk")
    try:
        import tipg  # noqa: F401
    except ImportError as exc:
        raise SystemExit("tipg is missing: .venv/bin/pip install -e '.[bench]'") from exc

    from app.migrate import upgrade
    from app.pgcluster import Cluster

    base = Path(tempfile.mkdtemp(prefix="porte-bench-tiles-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "db", _free_port())
    procs: list[subprocess.Popen] = []
    try:
        print("Starting a throwaway PostGIS cluster...", flush=True)
        cluster.start()
        cluster.create_database("bench")
        owner, app_url = cluster.url("owner", "bench"), cluster.url("app", "bench")
        upgrade(owner)
        built = asyncio.run(build(owner, args.grid))
        print(f"{built['doors']:,} doors (SYNTHETIC copies of Bruz + the sample).", flush=True)

        from app.config import Settings
        from app.security import access_token

        token = access_token(
            Settings(secret_key=SECRET, access_token_minutes=240),
            uuid.UUID(str(built["user"])),
            version=0,
        )
        ours_port, cold_port, tipg_port = _free_port(), _free_port(), _free_port()
        w = str(args.workers)
        uvicorn = [PYTHON, "-m", "uvicorn", "--workers", w, "--no-access-log"]
        uvicorn += ["--log-level", "warning"]
        porte_env = {
            "DATABASE_URL": app_url,
            "OWNER_DATABASE_URL": owner,
            "PORTE_SECRET_KEY": SECRET,
            "PORTE_MODE": "test",
            "PORTE_ACCESS_TOKEN_MINUTES": "240",
            "PORTE_DB_POOL_SIZE": "10",
        }
        porte = [*uvicorn, "app.main:create_app", "--factory", "--port"]
        procs.append(start([*porte, str(ours_port)], porte_env, ours_port, "/health"))
        procs.append(
            start(
                [*porte, str(cold_port)],
                {**porte_env, "PORTE_TILE_CACHE_MB": "0"},
                cold_port,
                "/health",
            )
        )
        procs.append(
            start(
                [*uvicorn, "tipg.main:app", "--port", str(tipg_port)],
                {
                    "DATABASE_URL": _plain(app_url),
                    "TIPG_DB_SCHEMAS": '["public"]',
                    "TIPG_DB_TABLES": '["public.address"]',
                },
                tipg_port,
                "/healthz",
            )
        )
        cid = built["campaign"]
        auth = {"Authorization": f"Bearer {token}"}
        ours_path = lambda z, x, y: f"/campaigns/{cid}/tiles/doors/{z}/{x}/{y}.mvt"  # noqa: E731
        servers = {
            OURS: (f"http://127.0.0.1:{ours_port}", ours_path, auth),
            COLD: (f"http://127.0.0.1:{cold_port}", ours_path, auth),
            REF: (
                f"http://127.0.0.1:{tipg_port}",
                lambda z, x, y: f"/collections/public.address/tiles/WebMercatorQuad/{z}/{x}/{y}",
                {},
            ),
        }
        results: dict[tuple[str, int], dict] = {}
        for z in (16, 14):
            tiles = built["tiles"][z]
            print(
                f"\nz{z}: {len(tiles)} densest tiles, {min(t[3] for t in tiles)}-"
                f"{max(t[3] for t in tiles)} doors each; wrk {args.connections} connections, "
                f"{args.seconds} s, {args.workers} uvicorn workers each",
                flush=True,
            )
            for name, (url, path, headers) in servers.items():
                paths = [path(z, x, y) for z, x, y, _ in tiles]
                sizes = tile_bytes(url, paths, headers)
                if args.warmup:  # every worker of every server: connections, plans, caches
                    wrk(url, paths, headers, args.warmup, args.connections)
                r = wrk(url, paths, headers, args.seconds, args.connections)
                r["bytes_mean"], r["bytes_max"] = statistics.mean(sizes), max(sizes)
                results[(name, z)] = r
                _print_run(name, r)
            if z == 16:
                # The organiser's map while volunteers canvass: every visit changes the
                # campaign's door version, so cached tiles are rebuilt after each one.
                url, path, headers = servers[OURS]
                paths = [path(z, x, y) for z, x, y, _ in tiles]
                with Trickle(app_url, cid, args.live_visits) as trickle:
                    r = wrk(url, paths, headers, args.seconds, args.connections)
                results[(LIVE, z)] = r
                _print_run(f"{LIVE} ({trickle.done} visits)", r)
        # Where the time goes: the same requests' fixed cost without any tile (sign-in check,
        # campaign scope with row-level security, one small query, commit, middlewares).
        floor_url, _, floor_headers = servers[OURS]
        floor = wrk(floor_url, [f"/campaigns/{cid}"], floor_headers, args.seconds, args.connections)
        print(
            f"\n  porte floor: GET /campaigns/{{id}} (auth + campaign scope, no tile) "
            f"{floor['rps']:8.1f} req/s  p50 {floor['p50']:6.1f} ms  p99 {floor['p99']:6.1f} ms"
        )
        bare = asyncio.run(
            bare_sql(app_url, str(cid), built["tiles"][16], args.seconds, args.connections)
        )
        print(f"  bare z16 door-tile SQL (asyncpg, no HTTP)            {bare:8.1f} req/s")
        print("\nRatios (porte / tipg):")
        for name, z in ((OURS, 16), (COLD, 16), (LIVE, 16), (OURS, 14), (COLD, 14)):
            a, b = results[(name, z)], results[(REF, z)]
            print(
                f"  z{z} {name:34s} throughput x{a['rps'] / b['rps']:.2f}, "
                f"p99 {a['p99']:.1f} vs {b['p99']:.1f} ms"
                + (f", bytes {a['bytes_mean'] / b['bytes_mean']:.3f}" if "bytes_mean" in a else "")
            )
        z16, z14 = results[(OURS, 16)], results[(OURS, 14)]
        checks = [
            ("z16 throughput >= 2x tipg", z16["rps"] >= 2 * results[(REF, 16)]["rps"]),
            ("z16 p99 < 50 ms", z16["p99"] < 50),
            ("z14 door tile < 50 kB (max)", z14["bytes_max"] < 50_000),
        ]
        print(f"\nTargets (the service as configured by default: {OURS}):")
        for label, ok in checks:
            print(f"  [{'met' if ok else 'MISSED'}] {label}")
    finally:
        for p in procs:
            stop(p)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
