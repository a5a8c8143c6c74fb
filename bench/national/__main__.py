"""National benchmark on a SYNTHETIC country (one command: `.venv/bin/python -m bench.national`).

Builds, in a throwaway PostGIS cluster, 69,069 polling stations (759 scaled copies of the real
92-13 sample's 91 stations: one constituency each, 4 communes each, 8 per département), about
2.4 million populated INSEE tiles and 5 million doors (``--doors 26000000`` for the full size
when the disk allows), writes them to files in the published formats (Filosofi CSV, contours
GeoJSON, BAN CSV),
then imports the files with the service's importers, each in its own process. Every row is
SYNTHETIC and labelled so (``source = 'synthetic'``, names "(synthetic)"). Then it prints, each
with its target (issue "National scale"):

- import rows/s and peak memory of each file; the first allocation; one département's doors
  re-imported and the allocation refreshed;
- the ranking of a campaign whose territory is the whole country: recompute with new weights
  (median of --runs), a page and one district's explanation over HTTP, the precompute's refresh;
- the national districts map (MVT z5-z12) under wrk (--connections, default 16): requests/s and
  p99, with the tile cache (as configured by default) and without.

The options and the ``ranking recompute (median)`` line are those of ``bench.ranking``, so that
the figures compare with the département ones (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.tiles.__main__ import SECRET, _free_port, _plain, start, stop, wrk

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTHON = sys.executable
PER_DEP = 8  # copies (constituencies) per département
TARGETS = {
    "import peak memory (MB)": 500,
    "first allocation (s)": 20 * 60,
    "one-département refresh (s, for 1 M doors)": 60,
    "ranking recompute (median)": 2.0,
    "page of the ranking p99 (ms)": 100,
    "explanation p99 (ms)": 50,
    "national MVT p99 (ms)": 50,
}


def machine() -> str:
    """The load conditions: cores, load average, memory, free disk (the machine is shared)."""
    load = os.getloadavg()
    disk = shutil.disk_usage("/tmp")
    mem = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        mem[key] = int(value.split()[0]) // 1024
    return (
        f"{os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"memory {mem['MemAvailable']:,} of {mem['MemTotal']:,} MB available, "
        f"disk {disk.free / 1e9:.0f} GB free"
    )


def _statements(sql: str, **values: float | int) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    for key, value in values.items():
        body = body.replace(f":{key}", str(value))
    return [s.strip() for s in body.split(";") if s.strip()]


def tune(cluster) -> None:
    """A national database wants more memory than the development defaults (restart)."""
    for setting in (
        "shared_buffers = '2GB'",
        "work_mem = '64MB'",
        "maintenance_work_mem = '1GB'",
        "max_wal_size = '16GB'",
        "checkpoint_timeout = '30min'",
        "effective_cache_size = '12GB'",
    ):
        cluster.psql(f"ALTER SYSTEM SET {setting}")
    cluster.stop()
    cluster.start()


# ---------------------------------------------------------------- data
async def build(owner: str, copies: int, doors: int) -> dict[str, int]:
    """The sample, then the SYNTHETIC country in schema syn (owner)."""
    from app.services.reference.imports.sample import load_sample_async

    print("Loading the 92-13 sample (the shapes every copy repeats)...", flush=True)
    await load_sample_async(owner, quiet=True)
    scale = 2.7  # each copy covers 7.3 times the sample: ~3,200 populated tiles
    engine = create_async_engine(owner)
    t = time.perf_counter()
    print(
        f"Building the SYNTHETIC country: {copies} copies x 91 stations, ~{doors:,} doors...",
        flush=True,
    )
    async with engine.begin() as conn:
        for stmt in _statements(
            (HERE / "synthetic.sql").read_text(),
            copies=copies,
            scale=scale,
            doors=doors,
            cols=28,
            per_dep=PER_DEP,
        ):
            await conn.execute(text(stmt))
        sizes = {
            t: (await conn.execute(text(f"SELECT count(*) FROM syn.{t}"))).scalar_one()
            for t in ("tile", "district", "door", "result", "cand")
        }
    await engine.dispose()
    print(f"  built in {time.perf_counter() - t:.0f} s: {sizes}", flush=True)
    return sizes


async def export(owner: str, out: Path) -> dict[str, Path]:
    """Write the SYNTHETIC country as the published formats (Filosofi CSV, GeoJSON, BAN CSV)."""
    import asyncpg

    files = {
        "districts": out / "contours-bureaux-de-vote-synthetic.geojson",
        "tiles": out / "carreaux-200m-synthetic.csv.gz",
        "addresses": out / "adresses-france-synthetic.csv.gz",
        "constituencies": out / "bureaux-circonscriptions-synthetic.csv",
    }
    conn = await asyncpg.connect(_plain(owner))
    try:
        with open(files["districts"], "wb") as fh:  # noqa: ASYNC230 (nothing else runs)
            fh.write(b'{"type": "FeatureCollection", "name": "SYNTHETIC polling stations",\n')
            fh.write(b'"features": [\n')
            first = True
            async with conn.transaction():
                async for (feature,) in conn.cursor(
                    "SELECT json_build_object('type', 'Feature', 'properties', json_build_object("
                    "'codeBureauVote', code, 'nomBureauVote', name, 'codeCommune', commune_code, "
                    "'nomCommune', commune_name, 'codeCirconscription', constituency), "
                    "'geometry', ST_AsGeoJSON(geom, 6)::json)::text FROM syn.district "
                    "ORDER BY code",
                    prefetch=2000,
                ):
                    fh.write((b"" if first else b",\n") + feature.encode())
                    first = False
            fh.write(b"\n]}\n")
        await _copy_gz(
            conn,
            files["tiles"],
            "SELECT new_id AS idcar_200m, i_est_200, lcog AS lcog_geo, ind, men, men_pauv, "
            "men_1ind, men_5ind, men_prop, men_fmp, ind_snv, men_surf, men_coll, men_mais, "
            "log_av45, log_45_70, log_70_90, log_ap90, log_inc, log_soc, ind_0_3, ind_4_5, "
            "ind_6_10, ind_11_17, ind_18_24, ind_25_39, ind_40_54, ind_55_64, ind_65_79, "
            "ind_80p, ind_inc FROM syn.tile",
            ",",
        )
        await _copy_gz(conn, files["addresses"], _DOORS.format(where="true", dx=0), ";")
        await conn.copy_from_query(
            'SELECT constituency AS "codeCirconscription", code AS "codeBureauVote" '
            "FROM syn.district",
            output=str(files["constituencies"]),
            format="csv",
            header=True,
            delimiter=";",
        )
    finally:
        await conn.close()
    return files


# BAN columns; street and ids say synthetic. dx moves the doors (degrees of longitude).
_DOORS = (
    "SELECT 'synthetic_national_' || n AS id, 1 + n % 200 AS numero, '' AS rep, "
    "'Voie fictive ' || (n / 50) || ' (synthétique)' AS nom_voie, '99999' AS code_postal, "
    "commune_code AS code_insee, 'Commune synthétique' AS nom_commune, "
    "round((ST_X(p) + {dx})::numeric, 7) AS lon, round(ST_Y(p)::numeric, 7) AS lat, households "
    "FROM syn.door WHERE {where} ORDER BY n"
)


async def _copy_gz(conn, path: Path, query: str, delimiter: str) -> None:
    raw = path.with_suffix("")
    await conn.copy_from_query(
        query, output=str(raw), format="csv", header=True, delimiter=delimiter
    )
    await asyncio.to_thread(_gzip, raw, path)


def _gzip(raw: Path, path: Path) -> None:
    with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=3) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    raw.unlink()


async def clear_reference(owner: str) -> None:
    """Empty the public tables: the imports below fill them from the files."""
    engine = create_async_engine(owner)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE insee_tile, district, election_result, election_candidate_result, "
                "constituency_part, constituency CASCADE"
            )
        )
        await conn.execute(text("DELETE FROM election"))
        await conn.execute(text("DELETE FROM address"))
    await engine.dispose()


def run_import(kind: str, owner: str, path: Path, communes: str | None = None) -> dict:
    """Import one file in a child process: report, wall time, peak memory (VmHWM)."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "bench.national.load",
            kind,
            owner,
            str(path),
            *([communes] if communes else []),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read()
    err = proc.stderr.read()
    status = proc.wait()
    seconds = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"import of {path.name} failed:\n{err.decode()[-3000:]}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    report.update(wall=seconds, peak_mb=report["peak_kb"] / 1024, size_mb=path.stat().st_size / 1e6)
    print(
        f"  {kind:<10} {report['rows_loaded']:>11,} rows in {seconds:7.1f} s "
        f"({report['rows_read'] / seconds:>9,.0f} rows/s), peak memory "
        f"{report['peak_mb']:6.0f} MB, file {report['size_mb']:.0f} MB",
        flush=True,
    )
    return report


async def load_results_and_constituencies(owner: str, constituencies: Path) -> None:
    """The SYNTHETIC election results (not measured) and the constituency file (importer)."""
    from app.services.reference.imports.constituencies import import_constituencies

    engine = create_async_engine(owner)
    async with engine.begin() as conn:
        for i, name in enumerate(("legislatives_2022_t2", "legislatives_2024_t1")):
            eid = (
                await conn.execute(
                    text(
                        "INSERT INTO election (name, source_file, loaded_at) VALUES "
                        "(:n, 'synthetic-bench-national', now() - make_interval(days => :d)) "
                        "RETURNING id"
                    ),
                    {"n": name, "d": 1 - i},
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO election_result SELECT :e, district_code, commune_code, "
                    "inscrits, votants, abstentions, exprimes, blancs, nuls FROM syn.result "
                    "WHERE election = :n"
                ),
                {"e": eid, "n": name},
            )
            await conn.execute(
                text(
                    "INSERT INTO election_candidate_result SELECT :e, district_code, position, "
                    "nuance, label, voix FROM syn.cand WHERE election = :n"
                ),
                {"e": eid, "n": name},
            )
    await engine.dispose()
    await import_constituencies(owner, constituencies)


async def timed_sql(owner: str, sql: str) -> tuple[float, object]:
    """One statement as the owner, timed (with its commit)."""
    engine = create_async_engine(owner)
    t = time.perf_counter()
    async with engine.begin() as conn:
        value = (await conn.execute(text(sql))).scalar()
    seconds = time.perf_counter() - t
    await engine.dispose()
    return seconds, value


# ---------------------------------------------------------------- campaign
async def make_campaign(owner: str, supporters: int, visits: int) -> dict:
    """A national campaign (territory: the country) with SYNTHETIC supporters and visits."""
    engine = create_async_engine(owner)
    async with engine.begin() as conn:
        users = {}
        for role in ("admin", "analyst"):
            users[role] = (
                await conn.execute(
                    text(
                        "INSERT INTO app_user (email, password_hash) VALUES (:e, 'x') RETURNING id"
                    ),
                    {"e": f"bench-national-{role}@example.test"},
                )
            ).scalar_one()
        t = time.perf_counter()
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date, side, k_threshold) VALUES "
                    "('Synthetic national campaign', '2027-06-11', 'ENS', 11) RETURNING id"
                )
            )
        ).scalar_one()
        territory_s = time.perf_counter() - t
        for role, uid in users.items():
            await conn.execute(
                text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r)"),
                {"c": cid, "u": uid, "r": role},
            )
        await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
        await conn.execute(
            text(
                # SYNTHETIC supporters at sampled doors: only the clear cells the ranking reads
                # (their door would be encrypted; nothing here is personal data)
                "INSERT INTO supporter (campaign_id, status, tile_id, bv_code, iris_code, "
                "cells_version, geocode_level) "
                "SELECT :c, 'active', c.tile_id, c.bv_code, c.iris_code, "
                "(SELECT version FROM district_version), 'manual' "
                "FROM (SELECT lon, lat FROM address "
                "      WHERE abs(hashtext(id::text || 's')) % 1000 < 1000 * :n / "
                "      (SELECT count(*) FROM address)::float8) a "
                "CROSS JOIN LATERAL porte_point_cells(a.lon, a.lat) c"
            ),
            {"c": cid, "n": supporters},
        )
        await conn.execute(
            text(
                "INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at, "
                "given_by_subject, channel, wording_version, notice_version, collected_by) "
                "SELECT campaign_id, id, 'mapping', now(), true, 'form', 'synthetic-bench', "
                "'synthetic-bench', 'synthetic benchmark' FROM supporter WHERE campaign_id = :c"
            ),
            {"c": cid},
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
                "WHERE abs(hashtext(id::text || 'v')) % 1000 < 1000 * :n / "
                "(SELECT count(*) FROM address)::float8"
            ),
            {"c": cid, "r": rid, "n": visits},
        )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return {"campaign": cid, "round": rid, "users": users, "territory_s": territory_s}


# ---------------------------------------------------------------- ranking
def _weights(i: int) -> dict[str, float]:
    """A different set of weights each run (mobilisation, moved): always a real recompute."""
    return {"side_score": 1.0, "abstention_rate": 1.0 + 0.1 * i, "supporters": 0.5}


async def measure_ranking(app_url: str, owner: str, c: dict, runs: int) -> dict[str, float]:
    """First build, recompute with new weights, refresh after visits and after an import."""
    from app.db import set_tenant
    from app.services.ranking import service

    cid, out = c["campaign"], {}
    engine = create_async_engine(app_url, connect_args={"server_settings": {"jit": "off"}})

    async def once(**kw) -> float:
        t = time.perf_counter()
        async with engine.begin() as conn:
            await set_tenant(conn, cid)
            res = await service.ranking(conn, cid, k=11, limit=100, **kw)
        out["_districts"], out["_used"] = (
            res["total_districts"],
            sum(f["status"] == "used" for f in res["factors"]),
        )
        return time.perf_counter() - t

    out["precompute, first build (values, z-scores, scoring)"] = await once()
    times = [await once(weights=_weights(i + 1)) for i in range(runs)]
    out["ranking recompute (median)"] = statistics.median(times)
    out["ranking recompute (best)"] = min(times)
    out["ranking from the precompute (fresh)"] = await once(weights=_weights(runs))
    await _add_visits(owner, c, 1000)
    out["precompute refresh after 1,000 new visits"] = await once(weights=_weights(runs))
    rebuild = [await once(weights=_weights(runs), refresh=True) for _ in range(2)]
    out["precompute full rebuild (after an import)"] = statistics.median(rebuild)
    async with engine.begin() as conn:  # the map draws the campaign's own ranking
        await set_tenant(conn, cid)
        await service.ranking(conn, cid, k=11, limit=1)
    await engine.dispose()
    return out


async def _add_visits(owner: str, c: dict, n: int) -> None:
    engine = create_async_engine(owner)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, visited_at) "
                "SELECT :c, gen_random_uuid(), id, :r, 'talked', now() FROM address "
                "ORDER BY md5(id::text || 'later') LIMIT :n"
            ),
            {"c": c["campaign"], "r": c["round"], "n": n},
        )
    await engine.dispose()


def http_latencies(base: str, headers: dict, paths: list[str]) -> dict[str, float]:
    """p50/p99 of sequential requests (ms), every answer checked."""
    times = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for p in paths:
            t = time.perf_counter()
            r = client.get(p)
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{p} answered {r.status_code}: {r.text[:300]}")
    times.sort()
    return {"p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99) - 1]}


# ---------------------------------------------------------------- one département
async def departement_refresh(owner: str, out: Path) -> dict[str, float]:
    """Re-import one département's doors (moved by ~0.5 m, as a BAN update would), then refresh
    the allocation: what the allocation costs when one département changes.

    A door id comes from one file only, so the département's doors are re-imported under the
    national file's name, limited to the département's communes (``--commune``)."""
    import asyncpg

    from app.services.reference.allocation import refresh_allocation

    conn = await asyncpg.connect(_plain(owner))
    try:
        dep = await conn.fetchval(
            "SELECT dep FROM syn.cp ORDER BY c OFFSET (SELECT count(*) / 2 FROM syn.cp) LIMIT 1"
        )
        (out / dep).mkdir(exist_ok=True)
        path = out / dep / "adresses-france-synthetic.csv.gz"
        communes = ",".join(
            r[0]
            for r in await conn.fetch(
                "SELECT DISTINCT commune_code FROM syn.door WHERE dep = $1", dep
            )
        )
        await _copy_gz(conn, path, _DOORS.format(where=f"dep = '{dep}'", dx=0.000007), ";")
    finally:
        await conn.close()
    report = run_import("addresses", owner, path, communes)
    engine = create_async_engine(owner)
    t = time.perf_counter()
    async with engine.begin() as c:
        await refresh_allocation(c)
    refresh = time.perf_counter() - t
    await engine.dispose()
    return {
        "dep": dep,
        "doors": report["rows_loaded"],
        "import": report["wall"],
        "allocation": refresh,
    }


# ---------------------------------------------------------------- national map
async def map_tiles(owner: str, per_zoom: int) -> dict[int, list[tuple[int, int, int]]]:
    """Up to ``per_zoom`` tiles holding districts at each zoom 5-12 (a seeded sample)."""
    engine = create_async_engine(owner)
    tiles: dict[int, list[tuple[int, int, int]]] = {}
    async with engine.connect() as conn:
        for z in range(5, 13):
            rows = (
                await conn.execute(
                    text(
                        "SELECT DISTINCT floor((lon + 180) / 360 * 2 ^ :z)::int AS x, "
                        "floor((1 - ln(tan(radians(lat)) + 1 / cos(radians(lat))) / pi()) / 2 "
                        "* 2 ^ :z)::int AS y FROM (SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM "
                        "(SELECT ST_PointOnSurface(geom) AS p FROM district) s) t"
                    ),
                    {"z": z},
                )
            ).all()
            random.Random(z).shuffle(rows)
            tiles[z] = [(z, r.x, r.y) for r in rows[:per_zoom]]
    await engine.dispose()
    return tiles


def mvt(app_url: str, owner: str, c: dict, args: argparse.Namespace) -> dict[str, dict]:
    """The analyst's national districts map under wrk, with and without the tile cache."""
    from app.config import Settings
    from app.security import access_token

    token = access_token(
        Settings(secret_key=SECRET, access_token_minutes=240),
        uuid.UUID(str(c["users"]["analyst"])),
        version=0,  # a new account's token version
    )
    headers = {"Authorization": f"Bearer {token}"}
    tiles = asyncio.run(map_tiles(owner, args.tiles_per_zoom))
    cid = c["campaign"]
    paths = [
        f"/campaigns/{cid}/tiles/districts/{z}/{x}/{y}.mvt" for t in tiles.values() for z, x, y in t
    ]
    env = {
        "DATABASE_URL": app_url,
        "OWNER_DATABASE_URL": owner,
        "PORTE_SECRET_KEY": SECRET,
        "PORTE_MODE": "test",
        "PORTE_ACCESS_TOKEN_MINUTES": "240",
        "PORTE_DB_POOL_SIZE": "10",
    }
    uvicorn = [
        PYTHON,
        "-m",
        "uvicorn",
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "app.main:create_app",
        "--factory",
        "--port",
    ]
    results: dict[str, dict] = {}
    # Without the tile cache first (every tile built: a first view); then as configured by
    # default, after a warm-up long enough for each worker to have built every tile about once
    # (a campaign's map in use: tiles are kept until its ranking or territory changes).
    for name, extra in (
        ("tile cache off", {"PORTE_TILE_CACHE_MB": "0"}),
        ("tile cache on (default)", {}),
    ):
        port = _free_port()
        # ready when a cheap public route answers (/health counts every door: seconds here)
        proc = start([*uvicorn, str(port)], {**env, **extra}, port, "/m/config.json")
        try:
            base = f"http://127.0.0.1:{port}"
            if not results:
                results.update(_api_latencies(base, headers, cid, owner))
            sizes = _tile_sizes(base, paths, headers)
            cold = results.get("tile cache off")
            warm = args.warmup
            if cold:  # each path through each worker, about twice
                warm = max(warm, min(180, round(2 * args.workers * len(paths) / cold["rps"])))
            wrk(base, paths, headers, warm, args.connections)
            r = wrk(base, paths, headers, args.seconds, args.connections)
            r.update(sizes, warmup_s=warm)
            results[name] = r
        finally:
            stop(proc)
    results["_tiles"] = {z: len(t) for z, t in tiles.items()}
    return results


def _api_latencies(base: str, headers: dict, cid: object, owner: str) -> dict[str, dict]:
    """Pages of the ranking (by offset and by rank) and explanations, over HTTP."""
    ranks = [random.randrange(0, 68_900) for _ in range(100)]
    ranking = f"/campaigns/{cid}/ranking?limit=100"
    return {
        "_page": http_latencies(base, headers, [f"{ranking}&offset={r}" for r in ranks]),
        "_keyset": http_latencies(base, headers, [f"{ranking}&after={r}" for r in ranks]),
        "_explain": http_latencies(
            base, headers, [f"/campaigns/{cid}/districts/{code}" for code in _codes(owner)]
        ),
    }


def _codes(owner: str) -> list[str]:
    async def fetch() -> list[str]:
        engine = create_async_engine(owner)
        async with engine.connect() as conn:
            rows = (
                (await conn.execute(text("SELECT code FROM district ORDER BY md5(code) LIMIT 100")))
                .scalars()
                .all()
            )
        await engine.dispose()
        return list(rows)

    return asyncio.run(fetch())


def _tile_sizes(base: str, paths: list[str], headers: dict) -> dict[str, float]:
    sizes = []
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        for p in paths:
            r = client.get(p, headers={"Accept-Encoding": "identity"})
            if r.status_code not in (200, 204):
                raise SystemExit(f"{p} answered {r.status_code}: {r.text[:300]}")
            sizes.append(len(r.content))
    return {"kb_mean": statistics.mean(sizes) / 1000, "kb_max": max(sizes) / 1000}


# ---------------------------------------------------------------- report
def verdict(value: float, target: float) -> str:
    """'target < X: met' or 'MISSED'."""
    return f"target < {target:g}: {'met' if value < target else 'MISSED'}"


def print_report(r: dict) -> None:
    """Every figure with its target."""
    s = r["sizes"]
    print("\nSYNTHETIC country (scaled copies of the real 92-13 sample; not real data)")
    print(
        f"  districts {s['district']:,} | tiles {s['tile']:,} | doors {s['door']:,} | "
        f"results {s['result']:,} | supporters {r['args'].supporters:,} | "
        f"visits {r['args'].visits:,}"
    )
    print(f"  machine before: {r['machine_before']}")
    print(f"  machine after:  {machine()}")
    print("\nImports (each file in its own process; the service's importers)")
    for kind, rep in r["imports"].items():
        print(
            f"  {kind:<10} {rep['rows_read'] / rep['wall']:>9,.0f} rows/s "
            f"({rep['rows_loaded']:,} rows, {rep['wall']:.0f} s), peak memory "
            f"{rep['peak_mb']:.0f} MB  {verdict(rep['peak_mb'], 500)} MB"
        )
    print("\nAllocation and maps")
    a = r["allocation"]
    print(f"  first allocation                  {a:8.1f} s  {verdict(a, 20 * 60)} s")
    d = r["departement"]
    total = d["import"] + d["allocation"]
    print(
        f"  one département ({d['dep']}, {d['doors']:,} doors): re-import {d['import']:.1f} s + "
        f"allocation refresh {d['allocation']:.1f} s = {total:.1f} s  "
        f"{verdict(total, 60)} s (the target is for a département of 1 M doors)"
    )
    print(f"  district shapes (z5-z12) built    {r['shapes']:8.1f} s")
    print(f"  territory (country) of a new campaign {r['campaign']['territory_s']:6.2f} s")
    print(
        f"\nRanking ({r['ranking']['_districts']:,} districts, factors with data "
        f"{r['ranking']['_used']})"
    )
    for label, seconds in r["ranking"].items():
        if label.startswith("_"):
            continue
        target = TARGETS.get(label)
        print(
            f"  {label:<52} {seconds:8.3f} s"
            + (f"  {verdict(seconds, target)} s" if target else "")
        )
    m = r.get("mvt")
    if m is None:
        return
    for label, key, target in (
        ("page of the ranking (offset)", "_page", 100),
        ("page of the ranking (keyset)", "_keyset", 100),
        ("one district's explanation", "_explain", 50),
    ):
        print(
            f"  {label + ' over HTTP':<52} p50 {m[key]['p50']:6.1f} ms  p99 "
            f"{m[key]['p99']:6.1f} ms  {verdict(m[key]['p99'], target)} ms"
        )
    print(
        f"\nNational districts map (MVT), tiles per zoom {m['_tiles']}; wrk "
        f"{r['args'].connections} connections, {r['args'].seconds} s, {r['args'].workers} "
        "uvicorn workers"
    )
    for name in ("tile cache on (default)", "tile cache off"):
        x = m[name]
        print(
            f"  {name:<26} {x['rps']:8.1f} req/s  p50 {x['p50']:6.1f} ms  p99 {x['p99']:6.1f} ms"
            f"  tile {x['kb_mean']:.1f} kB mean, {x['kb_max']:.0f} kB max, "
            f"after {x['warmup_s']} s of warm-up"
            + (f"  {verdict(x['p99'], 50)} ms" if name.endswith("(default)") else "")
            + (f"  ({x['errors']} non-2xx!)" if x["errors"] else "")
        )


def main() -> None:
    """Build, import, allocate, rank, serve, measure, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=759, help="copies of the 91 stations")
    ap.add_argument("--doors", type=int, default=5_000_000, help="target number of doors")
    ap.add_argument("--supporters", type=int, default=200_000)
    ap.add_argument("--visits", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=20, help="wrk duration per run")
    ap.add_argument("--warmup", type=int, default=5, help="unmeasured wrk seconds first")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    ap.add_argument("--tiles-per-zoom", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the cluster (prints its URL)")
    ap.add_argument("--no-map", action="store_true", help="skip the HTTP and map measures")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: sudo apt-get install -y wrk")

    from app.migrate import upgrade
    from app.pgcluster import Cluster

    r: dict = {"args": args, "machine_before": machine()}
    print(f"Machine: {r['machine_before']}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="porte-bench-national-", dir="/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "db", _free_port())
    print(f"Starting a throwaway PostGIS cluster in {base}...", flush=True)
    cluster.start()
    try:
        tune(cluster)
        owner, app_url = cluster.url("owner"), cluster.url("app")
        upgrade(owner)
        r["sizes"] = asyncio.run(build(owner, args.copies, args.doors))
        files = asyncio.run(export(owner, base))
        asyncio.run(clear_reference(owner))
        print("Importing the SYNTHETIC files...", flush=True)
        r["imports"] = {
            k: run_import(k, owner, files[k]) for k in ("districts", "tiles", "addresses")
        }
        asyncio.run(load_results_and_constituencies(owner, files["constituencies"]))
        print("First allocation (tiles -> districts)...", flush=True)
        r["allocation"], _ = asyncio.run(timed_sql(owner, "SELECT porte_refresh_allocation()"))
        print(f"  {r['allocation']:.0f} s", flush=True)
        r["shapes"], _ = asyncio.run(timed_sql(owner, "SELECT porte_refresh_district_shapes()"))
        r["campaign"] = asyncio.run(make_campaign(owner, args.supporters, args.visits))
        print("Ranking...", flush=True)
        r["ranking"] = asyncio.run(measure_ranking(app_url, owner, r["campaign"], args.runs))
        if not args.no_map:
            print("HTTP latencies and the national map...", flush=True)
            r["mvt"] = mvt(app_url, owner, r["campaign"], args)
        print("One département re-imported...", flush=True)
        r["departement"] = asyncio.run(departement_refresh(owner, base))
        print_report(r)
    finally:
        if args.keep:
            print(f"Cluster kept: {cluster.url('owner')} (data in {base})")
        else:
            cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
