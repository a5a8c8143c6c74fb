"""`python -m bench.geocode`: our local geocoder vs addok on Bruz's real doors.

(`python -m bench.geocode --national`: the same on a SYNTHETIC national BAN, see national.py.)

1. starts a throwaway PostGIS cluster, migrates it, imports Bruz's BAL (5,760 real doors);
2. builds the typed queries DERIVED from those doors (tests/fixtures_geocode.py: abbreviations,
   typos, wrong postcode, bis/ter… each with its expected door) plus queries for doors that are
   NOT loaded (numbers past the end of real streets, addresses in other départements);
3. geocodes them with ours (batch, and one query at a time);
4. indexes the same doors in addok (+ addok-fr, addok-france) on a private Redis, and queries
   addok one address at a time (its normal use);
5. prints match rate at housenumber (≤ 30 m from the expected door), median error, wrong-commune
   answers, answers for unloaded doors, addresses/s, and the ratios.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAL = ROOT / "data" / "addresses" / "bal_35047_bruz.csv"
ADDOK_PACKAGES = ["addok", "addok-fr", "addok-france"]


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metres(lon1, lat1, lon2, lat2) -> float:
    """Distance in metres (equirectangular; fine at this scale)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371008.8 * math.hypot(x, math.radians(lat2 - lat1))


def score(cases, answers) -> dict:
    """Figures for one geocoder: answers = list of (level, lon, lat, citycode) or None."""
    found, errors, wrong_commune = 0, [], 0
    for c, a in zip(cases, answers, strict=True):
        if a is None:
            continue
        level, lon, lat, city = a
        if city is not None and city != "35047":
            wrong_commune += 1
        if lon is not None:
            d = metres(c.lon, c.lat, lon, lat)
            errors.append(d)
            if level == "housenumber" and d <= 30:
                found += 1
    return {
        "match_rate": found / len(cases),
        "median_error_m": statistics.median(errors) if errors else float("nan"),
        "wrong_commune": wrong_commune,
    }


def unloaded(cases, answers) -> dict:
    """How a geocoder answers doors that are not loaded: a door-level answer is a wrong place."""
    out = {"door_answer (wrong place)": 0, "other_commune_answered_in_bruz": 0, "honest": 0}
    for c, a in zip(cases, answers, strict=True):
        level = a[0] if a else "none"
        city = a[3] if a else None
        if c.kind == "other_commune" and city == "35047":
            out["other_commune_answered_in_bruz"] += 1
        elif level in ("housenumber",):
            out["door_answer (wrong place)"] += 1
        else:
            out["honest"] += 1
    return out


# ---------------------------------------------------------------- ours
async def run_ours(owner_url: str, cases, extra) -> dict:
    """Geocode with ours: one batch (set-based SQL), then one query at a time."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.people.geocoder import geocode
    from bench.geocode.national import CpuClock, spent

    engine = create_async_engine(owner_url, pool_size=1)
    queries = [c.typed for c in cases]
    async with engine.connect() as conn:
        clock = CpuClock((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await geocode(conn, queries[:50])  # warm-up (plans, caches)
        for q in queries[:20]:
            await geocode(conn, [q])
        t0 = clock.read()
        res = await geocode(conn, queries)
        batch = spent(t0, clock.read())
        batch_s = batch["wall"]
        t0 = clock.read()
        for q in queries:
            await geocode(conn, [q])
        single = spent(t0, clock.read())
        single_s = single["wall"]
        res_extra = await geocode(conn, [c.typed for c in extra])
    await engine.dispose()

    def conv(r):
        return (r.level, r.lon, r.lat, r.code_insee)

    return {
        **score(cases, [conv(r) for r in res]),
        "per_s_batch": len(queries) / batch_s,
        "per_s_single": len(queries) / single_s,
        "unloaded": unloaded(extra, [conv(r) for r in res_extra]),
        "cpu_single": {k: v / len(queries) for k, v in single.items()},
        "cpu_batch": {k: v / len(queries) for k, v in batch.items()},
    }


# ---------------------------------------------------------------- addok
def addok_python() -> tuple[str | None, str]:
    """A Python with addok installed, or (None, why not)."""
    for venv in (
        os.environ.get("ADDOK_VENV"),
        Path(__file__).with_name(".venv-addok"),
        "/tmp/addok-venv",
    ):
        if venv and (Path(venv) / "bin" / "addok").exists():
            return str(Path(venv) / "bin" / "python"), f"addok from {venv}"
    venv = Path(__file__).with_name(".venv-addok")
    print(f"Installing {', '.join(ADDOK_PACKAGES)} into {venv} (one time)…", flush=True)
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *ADDOK_PACKAGES],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0:
        return None, (
            "addok could not be installed: "
            + (r.stderr.strip().splitlines() or ["unknown error"])[-1]
        )
    return str(venv / "bin" / "python"), f"addok installed in {venv}"


def addok_docs(doors: list[dict]) -> list[dict]:
    """BAN-style addok documents: one per street with its house numbers, plus the commune."""
    streets: dict[str, dict] = {}
    for d in doors:
        s = streets.setdefault(
            d["nom_voie"],
            {
                "id": f"35047_{len(streets):04d}",
                "type": "street",
                "name": d["nom_voie"],
                "postcode": "35170",
                "citycode": "35047",
                "city": d["nom_commune"],
                "importance": 0.5,
                "housenumbers": {},
                "_pts": [],
            },
        )
        key = f"{d['numero']} {d['suffixe']}".strip() if d["suffixe"] else str(d["numero"])
        s["housenumbers"][key] = {"lat": d["lat"], "lon": d["lon"]}
        s["_pts"].append((d["lon"], d["lat"]))
    docs = []
    for s in streets.values():
        pts = s.pop("_pts")
        s["lon"] = sum(p[0] for p in pts) / len(pts)
        s["lat"] = sum(p[1] for p in pts) / len(pts)
        docs.append(s)
    lon = sum(d["lon"] for d in doors) / len(doors)
    lat = sum(d["lat"] for d in doors) / len(doors)
    docs.append(
        {
            "id": "35047",
            "type": "municipality",
            "name": "Bruz",
            "postcode": "35170",
            "citycode": "35047",
            "city": "Bruz",
            "lon": lon,
            "lat": lat,
            "importance": 0.6,
        }
    )
    return docs


ADDOK_CONFIG = """
REDIS = {{"host": "127.0.0.1", "port": {port}, "indexes": {{"db": 0}}, "documents": {{"db": 1}}}}
BATCH_WORKERS = 1
QUERY_PROCESSORS_PYPATHS = [
    "addok.helpers.text.check_query_length",
    "addok_france.extract_address",
    "addok_france.clean_query",
    "addok_france.remove_leading_zeros",
]
SEARCH_RESULT_PROCESSORS_PYPATHS = [
    "addok.helpers.results.match_housenumber",
    "addok_france.make_labels",
    "addok.helpers.results.score_by_importance",
    "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_ngram_distance",
    "addok.helpers.results.score_by_geo_distance",
]
PROCESSORS_PYPATHS = [
    "addok.helpers.text.tokenize",
    "addok.helpers.text.normalize",
    "addok_france.glue_ordinal",
    "addok_france.fold_ordinal",
    "addok_france.flag_housenumber",
    "addok.helpers.text.synonymize",
    "addok_fr.phonemicize",
]
LOG_DIR = "{tmp}"
"""


def run_addok(py: str, tmp: Path, doors, cases, extra) -> dict:
    """Index the doors in addok on a private Redis, query one at a time, stop Redis."""
    redis = shutil.which("redis-server")
    if not redis:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    rdir = tmp / "redis"
    rdir.mkdir()
    proc = subprocess.Popen(
        [
            redis,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(rdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        conf = tmp / "addok.conf"
        conf.write_text(ADDOK_CONFIG.format(port=port, tmp=tmp))
        env = {**os.environ, "ADDOK_CONFIG_MODULE": str(conf)}
        docs = tmp / "docs.ndjson"
        docs.write_text("\n".join(json.dumps(d) for d in addok_docs(doors)) + "\n")
        addok = str(Path(py).parent / "addok")
        for _ in range(50):  # wait for Redis
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        t0 = time.perf_counter()
        for args in (["batch", str(docs)], ["ngrams"]):
            r = subprocess.run([addok, *args], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"addok {args[0]} failed: {r.stderr.strip()[-500:]}")
        index_s = time.perf_counter() - t0
        side = Path(__file__).with_name("addok_side.py")
        answers = {}
        for name, cs in (("main", cases), ("extra", extra)):
            qf, rf = tmp / f"{name}.json", tmp / f"{name}.out.json"
            qf.write_text(json.dumps([c.typed for c in cs]))
            r = subprocess.run(
                [py, str(side), str(qf), str(rf)], env=env, capture_output=True, text=True
            )
            if r.returncode != 0:
                raise RuntimeError(f"addok search failed: {r.stderr.strip()[-500:]}")
            answers[name] = json.loads(rf.read_text())

        def conv(a):
            if a is None:
                return None
            return (
                "housenumber" if a["type"] == "housenumber" else a["type"],
                a["lon"],
                a["lat"],
                a["citycode"],
            )

        main = answers["main"]
        return {
            **score(cases, [conv(a) for a in main["results"]]),
            "per_s_single": len(cases) / main["seconds"],
            "index_s": index_s,
            "unloaded": unloaded(extra, [conv(a) for a in answers["extra"]["results"]]),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- main
async def prepare(owner_url: str):
    """Import Bruz's doors and build the typed queries."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.reference.imports.addresses import import_addresses
    from tests.fixtures_geocode import load_doors, not_loaded_cases, typed_cases

    rejects = Path(tempfile.gettempdir()) / "bench-geocode-rejects.csv"
    await import_addresses(owner_url, BAL, report_path=rejects)
    engine = create_async_engine(owner_url, pool_size=1)
    async with engine.connect() as conn:
        doors = await load_doors(conn)
    await engine.dispose()
    return doors, typed_cases(doors, n=1000), not_loaded_cases(doors)


def main() -> None:
    """Run the benchmark and print the figures (``--national``: bench/geocode/national.py)."""
    sys.path.insert(0, str(ROOT))
    if "--national" in sys.argv[1:]:
        from bench.geocode.national import main as national

        national(sys.argv[1:])
        return
    from app.migrate import upgrade
    from app.pgcluster import Cluster

    tmp = Path(tempfile.mkdtemp(prefix="porte-bench-geocode-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    cluster = Cluster(tmp / "db", free_port())
    print("Starting a throwaway PostGIS cluster and loading Bruz's doors…", flush=True)
    cluster.start()
    try:
        cluster.create_database("bench")
        owner = cluster.url("owner", "bench")
        upgrade(owner)
        doors, cases, extra = asyncio.run(prepare(owner))
        print(
            f"{len(doors)} real doors (BAL 35047); {len(cases)} typed queries derived from "
            f"them (generated variants) + {len(extra)} queries for doors NOT loaded.\n",
            flush=True,
        )
        ours = asyncio.run(run_ours(owner, cases, extra))
        loads = [os.getloadavg()[0]]
        py, how = addok_python()
        addok, why = None, how
        if py:
            try:
                addok = run_addok(py, tmp, doors, cases, extra)
            except Exception as exc:  # report, still print our figures
                why = f"addok failed: {exc}"
        loads.append(os.getloadavg()[0])
        print(
            f"Machine: {os.cpu_count()} CPUs, load average {loads[0]:.1f} after our run, "
            f"{loads[1]:.1f} after addok's (throughput figures drop when other jobs share the "
            "CPUs).\n"
        )
        report(ours, addok, why)
    finally:
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def report(ours: dict, addok: dict | None, why: str) -> None:
    """Print the comparison table and ratios."""

    def row(name, o, a, fmt):
        a_txt = fmt.format(a) if a is not None else "n/a"
        print(f"  {name:<34} {fmt.format(o):>12} {a_txt:>12}")

    print(f"{'':36} {'porte':>12} {'addok':>12}")
    row(
        "match rate at housenumber (≤30 m)",
        ours["match_rate"] * 100,
        addok and addok["match_rate"] * 100,
        "{:.1f} %",
    )
    row("median error (m)", ours["median_error_m"], addok and addok["median_error_m"], "{:.1f}")
    row("wrong-commune answers", ours["wrong_commune"], addok and addok["wrong_commune"], "{:d}")
    row(
        "addresses/s, one at a time",
        ours["per_s_single"],
        addok and addok["per_s_single"],
        "{:.0f}",
    )
    row("addresses/s, batch (import path)", ours["per_s_batch"], None, "{:.0f}")
    for name, c in (("one at a time", ours["cpu_single"]), ("in a batch", ours["cpu_batch"])):
        print(
            f"  CPU per address, {name}: client {1000 * c['client_cpu']:.2f} ms + PostgreSQL "
            f"{1000 * c['db_cpu']:.2f} ms (wall {1000 * c['wall']:.2f} ms)"
        )
    print("  doors NOT loaded:")
    for k in ours["unloaded"]:
        row(f"  {k}", ours["unloaded"][k], addok and addok["unloaded"][k], "{:d}")
    if addok:
        print("\nRatios (porte / addok):")
        print(f"  match rate           {ours['match_rate'] / addok['match_rate']:.3f}")
        print(f"  throughput, single   {ours['per_s_single'] / addok['per_s_single']:.2f}x")
        print(
            f"  throughput, batch    {ours['per_s_batch'] / addok['per_s_single']:.2f}x "
            "(our batch vs addok one at a time)"
        )
        print(f"\naddok index build: {addok['index_s']:.1f} s ({why}).")
    else:
        print(f"\naddok figures unavailable: {why}")


if __name__ == "__main__":
    main()
