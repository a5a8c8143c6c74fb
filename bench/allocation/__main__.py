"""Allocation at national size on SYNTHETIC data: `.venv/bin/python -m bench.allocation`.

One command, throwaway cluster. Builds a SYNTHETIC France-sized base (bench/allocation/synthetic.py:
69,000 polling stations, ≈2.3 M tiles, 5 M doors by default), then prints:

- the first national allocation (target < 20 min), run as `porte allocation refresh` in a
  subprocess that is KILLED part-way (--kill-after), then run again: it continues, and the
  checks below show nothing was counted twice;
- a one-département refresh after re-importing its doors (1 M doors by default; target < 60 s)
  and after re-importing its tiles, with the number of blocks and districts rebuilt.

Functions others can time: ``bench.allocation.synthetic.build`` (the base),
``app.services.reference.allocation.refresh_in_steps`` (the refresh), ``reimport_departement``
below (a département's doors replaced in one statement, as an import does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.allocation.synthetic import Size, build

FIRST_TARGET_S = 20 * 60
DEPARTEMENT_TARGET_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def reimport_departement(
    owner_url: str, size: Size, doors: int, blocks: int = 8, seed: float = 0.7
) -> dict[str, float]:
    """Replace the doors of a ``blocks`` x ``blocks`` square (a département, ~6,400 km²) in the
    middle of the base by ``doors`` new SYNTHETIC ones, in one transaction; timings."""
    bx = size.origin_x + (size.blocks_x // 2 - blocks // 2) * 10_000.0
    by = size.origin_y + (size.blocks_y // 2 - blocks // 2) * 10_000.0
    side = blocks * 10_000.0
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        t = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT setseed($1)", seed)
            removed = await conn.execute(
                "DELETE FROM address a USING (SELECT ST_Transform(ST_MakeEnvelope($1::float8, "
                "$2::float8, $1::float8 + $3::float8, $2::float8 + $3::float8, 3035), 4326) g) r "
                "WHERE a.geom && r.g AND ST_Intersects(ST_Transform(a.geom, 3035), "
                "ST_MakeEnvelope($1::float8, $2::float8, $1::float8 + $3::float8, "
                "$2::float8 + $3::float8, 3035))",
                bx, by, side,
            )  # fmt: skip
            await conn.execute(
                "CREATE TEMP TABLE dep_district ON COMMIT DROP AS SELECT row_number() OVER "
                "(ORDER BY code) - 1 AS i, geom_3035 AS g FROM district WHERE geom_3035 && "
                "ST_MakeEnvelope($1::float8, $2::float8, $1::float8 + $3::float8, "
                "$2::float8 + $3::float8, 3035)",
                bx, by, side,
            )  # fmt: skip
            await conn.execute("CREATE UNIQUE INDEX ON dep_district (i); ANALYZE dep_district")
            await conn.execute(
                """
                INSERT INTO address (ban_id, numero, nom_voie, code_insee, lon, lat, households,
                                     source, source_file)
                SELECT 'DEP_' || n, 1 + n % 200, 'SYNTHETIC street ' || (n / 40), 'D0001',
                       round(ST_X(p)::numeric, 7), round(ST_Y(p)::numeric, 7), 1, 'synthetic',
                       'synthetic-departement.csv'
                FROM (SELECT n, d.g,
                             ST_XMin(d.g) + random() * (ST_XMax(d.g) - ST_XMin(d.g)) AS x,
                             ST_YMin(d.g) + random() * (ST_YMax(d.g) - ST_YMin(d.g)) AS y
                      FROM generate_series(1, $4) n
                      JOIN dep_district d ON d.i = n % (SELECT count(*) FROM dep_district)) s
                CROSS JOIN LATERAL ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 3035), 4326) p
                WHERE x BETWEEN $1::float8 AND $1::float8 + $3::float8
                  AND y BETWEEN $2::float8 AND $2::float8 + $3::float8
                """,
                bx, by, side, doors,
            )  # fmt: skip
        import_s = time.perf_counter() - t
        queued = await conn.fetchval("SELECT count(*) FROM allocation_dirty")
        loaded = await conn.fetchval(
            "SELECT count(*) FROM address WHERE source_file = 'synthetic-departement.csv'"
        )
        t = time.perf_counter()
        await conn.execute(
            "UPDATE insee_tile SET men = men * 1.1 WHERE geom && ST_MakeEnvelope($1::float8, "
            "$2::float8, $1::float8 + $3::float8, $2::float8 + $3::float8, 3035)",
            bx, by, side,
        )  # fmt: skip
        tiles_s = time.perf_counter() - t
    finally:
        await conn.close()
    return {
        "removed": int(removed.split()[-1]),
        "loaded": loaded,
        "import_s": import_s,
        "queued_blocks": queued,
        "tiles_update_s": tiles_s,
    }


async def _counts(owner_url: str) -> dict[str, float]:
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM door_district) AS door_district, "
            "(SELECT count(*) FROM district_alloc) AS pairs, "
            "(SELECT count(*) FROM district_profile) AS profiles, "
            "(SELECT sum(doors) FROM district_profile) AS profile_doors, "
            "(SELECT sum(men) FROM district_profile) AS men, "
            "(SELECT max(w) FROM (SELECT sum(weight) w FROM district_alloc GROUP BY tile_id) s) "
            "AS max_tile_share, "
            "(SELECT version FROM allocation_state) AS version, "
            "(SELECT stale FROM allocation_state) AS stale"
        )
        return dict(row)
    finally:
        await conn.close()


async def _changed_districts(owner_url: str, version: int) -> tuple[int, int]:
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        changed = await conn.fetchval(
            "SELECT count(*) FROM district_profile WHERE alloc_version > $1", version
        )
        total = await conn.fetchval("SELECT count(*) FROM district_profile")
        return changed, total
    finally:
        await conn.close()


def _first_allocation(cluster, owner_url: str, kill_after: float) -> dict[str, float]:
    """`porte allocation refresh` in a subprocess, killed after ``kill_after`` s, then resumed."""
    from app.services.reference.allocation import refresh_in_steps

    env = dict(
        os.environ,
        DATABASE_URL=cluster.url("app"),
        OWNER_DATABASE_URL=owner_url,
        PORTE_LANG="en",
    )
    cmd = [sys.executable, "-m", "app.cli", "allocation", "refresh", "--lines"]
    t0 = time.perf_counter()
    out: dict[str, float] = {}
    if kill_after > 0:
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            out["killed_at_s"] = time.perf_counter() - t0
        lines = [ln for ln in (proc.stderr.read() or "").splitlines() if "blocks" in ln]
        if lines:
            print(f"  subprocess before the kill: {lines[-1]}")
    last = [0.0]

    def progress(p):
        now = time.perf_counter()
        if now - last[0] > 30 or p.phase == "profiles":
            last[0] = now
            print(f"  {p.done:,} / {p.done + p.remaining:,} blocks ({p.phase})", flush=True)

    report = asyncio.run(refresh_in_steps(owner_url, on_progress=progress))
    out["total_s"] = time.perf_counter() - t0
    out["resumed"] = float(report.resumed)
    out["resumed_s"] = report.seconds
    out["blocks_after_resume"] = report.blocks
    out["profiles_s"] = report.profiles_seconds
    return out


def main() -> None:
    """Build the SYNTHETIC national base, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=69_000)
    parser.add_argument("--doors", type=int, default=5_000_000)
    parser.add_argument("--blocks", type=int, default=75, help="side of the square, 10 km blocks")
    parser.add_argument("--spread", type=float, default=400.0, help="door spread (m)")
    parser.add_argument("--departement-doors", type=int, default=1_000_000)
    parser.add_argument(
        "--kill-after", type=float, default=120.0, help="kill the first run after N s (0: never)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the cluster (prints its URL)")
    args = parser.parse_args()

    from app.migrate import upgrade
    from app.pgcluster import Cluster
    from app.services.reference.allocation import refresh_in_steps

    size = Size(
        args.blocks, args.blocks, args.districts, args.doors, door_spread=args.spread,
        empty_tiles=0.15,
    )  # fmt: skip
    base = Path(tempfile.mkdtemp(prefix="porte-bench-allocation-", dir="/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "db", _free_port())
    print(f"Starting a throwaway PostGIS cluster in {base}...")
    cluster.start()
    try:
        owner_url = cluster.url("owner")
        upgrade(owner_url)

        async def make():
            conn = await asyncpg.connect(_dsn(owner_url))
            try:
                async with conn.transaction():
                    return await build(conn, size)
            finally:
                await conn.close()

        print("Building the SYNTHETIC national base...", flush=True)
        t = time.perf_counter()
        sizes = asyncio.run(make())
        build_s = time.perf_counter() - t
        print(
            f"  districts {sizes['district']:,} | tiles {sizes['insee_tile']:,} | "
            f"doors {sizes['address']:,} (built in {build_s:.0f} s)",
            flush=True,
        )
        print("First national allocation (killed part-way, then run again)...", flush=True)
        first = _first_allocation(cluster, owner_url, args.kill_after)
        after_first = asyncio.run(_counts(owner_url))
        print("Re-importing one SYNTHETIC département's doors...", flush=True)
        dep = asyncio.run(reimport_departement(owner_url, size, args.departement_doors))
        # The tiles update above is queued too: refresh doors and tiles, then tiles alone.
        t = time.perf_counter()
        rep = asyncio.run(refresh_in_steps(owner_url))
        dep_s = time.perf_counter() - t
        changed, total = asyncio.run(_changed_districts(owner_url, after_first["version"]))
        after_dep = asyncio.run(_counts(owner_url))
    finally:
        if args.keep:
            print(f"Cluster kept: {cluster.url('owner')} (data in {base})")
        else:
            cluster.destroy()

    def verdict(value: float, target: float) -> str:
        return f"(target < {target:,.0f} s: {'met' if value < target else 'MISSED'})"

    print()
    print("SYNTHETIC national base (generated; not real data)")
    print(
        f"  districts {sizes['district']:,} | tiles {sizes['insee_tile']:,} | "
        f"doors {sizes['address']:,}"
    )
    print(
        f"first national allocation: {first['total_s']:.0f} s "
        f"{verdict(first['total_s'], FIRST_TARGET_S)}"
        + (
            f"; killed at {first['killed_at_s']:.0f} s and run again: continued "
            f"({first['blocks_after_resume']:,} blocks left, {first['resumed_s']:.0f} s)"
            if "killed_at_s" in first
            else ""
        )
    )
    print(
        f"  {after_first['door_district']:,} doors in districts (profiles say "
        f"{after_first['profile_doors']:,}), {after_first['pairs']:,} tile/district pairs, "
        f"largest share given by one tile {after_first['max_tile_share']:.6f}"
    )
    print(
        f"one-département refresh: {dep_s:.1f} s {verdict(dep_s, DEPARTEMENT_TARGET_S)} after "
        f"replacing {dep['removed']:,} doors by {dep['loaded']:,} "
        f"(import statement {dep['import_s']:.1f} s, its triggers included) and "
        f"updating its tiles ({dep['tiles_update_s']:.1f} s)"
    )
    print(
        f"  {rep.blocks:,} blocks rebuilt; {changed:,} of {total:,} district profiles changed; "
        f"doors in districts now {after_dep['door_district']:,} "
        f"(profiles say {after_dep['profile_doors']:,})"
    )


if __name__ == "__main__":
    main()
