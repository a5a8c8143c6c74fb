"""`python -m bench.import_national`: the national reference files import in bounded memory.

Imports at national size: the national BAN file (26 M doors, gzip), the national
Filosofi tiles (2.3 M) and the polling-station contours (69,000) each import with the progress bar
in less than 500 MB of peak memory (RSS of the importing process).

1. checks the free disk, then writes SYNTHETIC files of national shape (bench/import_national/
   synthetic.py; ``--data DIR`` keeps them for the next run): BAN at each ``--doors`` size
   (default 1,000,000 and 5,000,000: memory must not grow with the size), ``--tiles`` Filosofi
   tiles (2,300,000), ``--districts`` contours (69,000 of ``--vertices`` points);
2. starts a throwaway PostGIS cluster at schema head; each import runs into a fresh database (a
   first national load, the bulk path) in a child process (``bench.import_national.load``: the
   importer of ``porte import``, progress bar on, without the allocation refresh the command
   runs afterwards, which bench/allocation measures);
3. prints, for each: rows, wall time, rows/s, peak RSS against the target, and for the doors the
   peak RSS at each size (flat = bounded).

``--doors 26000000`` measures the full national size (0.8 GB of SYNTHETIC gzip; the database
took about 21 GB of disk at its peak, index rebuild included: the disk check says whether it
fits).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench.import_addresses.__main__ import run_measured
from bench.import_national import synthetic

TARGET_MB = 500
# Disk needed per row: the file (gzip) and the database (table, indexes, WAL), measured on
# earlier runs with a margin.
DISK_PER_ROW = {"addresses": 40 + 900, "tiles": 60 + 600, "districts": 4_000 + 12_000}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def _progress_line(output: str) -> str:
    """The last line the progress bar drew (evidence it ran), without terminal codes."""
    lines = [ANSI.sub("", ln).strip() for ln in re.split(r"[\r\n]", output)]
    bars = [ln for ln in lines if ln.endswith(("rows", ":00")) and " rows " in f" {ln} "]
    bars = [ln for ln in lines if " rows " in ln and not ln.startswith("{")] or bars
    return bars[-1] if bars else "(no progress bar drawn)"


def _check_disk(where: Path, plan: list[tuple[str, int]]) -> None:
    need = sum(DISK_PER_ROW[kind] * rows for kind, rows in plan)
    # files and databases of one size at a time are removed before the next
    biggest = max(DISK_PER_ROW[kind] * rows for kind, rows in plan)
    free = shutil.disk_usage(where).free
    print(f"Disk: {_mb(free)} free in {where}; this run needs about {_mb(biggest)} at once "
          f"({_mb(need)} in all)")  # fmt: skip
    if biggest * 1.2 > free:
        raise SystemExit(
            f"Not enough disk for this size: about {_mb(biggest * 1.2)} needed, {_mb(free)} free. "
            "Choose a smaller --doors (memory is measured flat with size: 1 M vs 5 M shows it)."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--doors", default="1000000,5000000", help="door counts, comma-separated (26000000: all)"
    )
    parser.add_argument("--tiles", type=int, default=2_300_000)
    parser.add_argument("--districts", type=int, default=69_000)
    parser.add_argument("--vertices", type=int, default=180, help="points per contour")
    parser.add_argument(
        "--only", default="addresses,tiles,districts", help="which imports, comma-separated"
    )
    parser.add_argument("--data", type=Path, help="keep the SYNTHETIC files here (reused)")
    args = parser.parse_args()

    only = {k.strip() for k in args.only.split(",") if k.strip()}
    plan: list[tuple[str, int]] = []
    if "addresses" in only:
        plan += [("addresses", int(d)) for d in args.doors.split(",") if d.strip()]
    if "tiles" in only:
        plan.append(("tiles", args.tiles))
    if "districts" in only:
        plan.append(("districts", args.districts))
    if not plan:
        raise SystemExit("--only: nothing to import (addresses, tiles, districts)")

    work = Path(tempfile.mkdtemp(prefix="porte-bench-national-import-", dir="/tmp"))
    work.chmod(0o755)
    data = args.data or work / "data"
    data.mkdir(parents=True, exist_ok=True)
    _check_disk(data, plan)
    load = os.getloadavg()
    print(f"Machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} "
          "(shared with other work)")  # fmt: skip

    from app.migrate import upgrade
    from app.pgcluster import Cluster

    cluster = Cluster(work / "db", _free_port())
    print(f"Starting a throwaway PostGIS cluster in {work}...", flush=True)
    cluster.start()
    results = []
    try:
        cluster.create_database("bench_template")
        upgrade(cluster.url("owner", "bench_template"))
        env = dict(os.environ, PORTE_PROGRESS="1", PYTHONUNBUFFERED="1")
        for n, (kind, rows) in enumerate(plan):
            path = {
                "addresses": data / f"SYNTHETIC-adresses-france-{rows}.csv.gz",
                "tiles": data / f"SYNTHETIC-filosofi2019-carreaux-200m-{rows}.csv.gz",
                "districts": data / f"SYNTHETIC-contours-bureaux-de-vote-{rows}.geojson",
            }[kind]
            if not path.exists():
                print(f"Writing {path.name} (SYNTHETIC)...", flush=True)
                t = time.perf_counter()
                tmp = path.with_name(path.name + ".part")
                if kind == "addresses":
                    synthetic.write_ban(tmp, rows)
                elif kind == "tiles":
                    synthetic.write_tiles(tmp, rows)
                else:
                    synthetic.write_contours(tmp, rows, args.vertices)
                tmp.rename(path)
                print(f"  {_mb(path.stat().st_size)} in {time.perf_counter() - t:.0f} s")
            name = f"bench_{n}"
            cluster.create_database(name, template="bench_template")
            owner = cluster.url("owner", name)
            print(f"Importing {path.name}...", flush=True)
            before = os.getloadavg()[0]
            run = run_measured(
                [sys.executable, "-m", "bench.import_national.load", kind, str(path), owner],
                env,
                cluster.pgdata,
            )
            report = json.loads(run.output.strip().splitlines()[-1])
            after = os.getloadavg()[0]
            loaded = report.get("rows_loaded") or 0
            result = {
                "kind": kind,
                "rows": rows,
                "loaded": loaded,
                "file_bytes": path.stat().st_size,
                "seconds": run.seconds,
                "rows_per_s": loaded / run.seconds if run.seconds else 0,
                "peak_rss": report["peak_rss"],  # the child's own VmHWM (see load.peak_rss)
                "client_cpu": run.client_cpu,
                "server_cpu": run.server_cpu,
                "load": (before, after),
                "progress": _progress_line(run.output),
                "phases": {k: v for k, v in report.items() if k.endswith("_seconds")},
            }
            results.append(result)
            print(f"  {_line(result)}", flush=True)
            cluster.drop_database(name)
            if not args.data:
                path.unlink()
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("SYNTHETIC national-size files (generated, not real data)")
    for r in results:
        print(_line(r))
        print(f"    progress bar: {r['progress']}")
        if r["phases"]:
            print("    phases: " + ", ".join(f"{k} {v}" for k, v in r["phases"].items()))
    doors = [r for r in results if r["kind"] == "addresses"]
    if len(doors) > 1:
        small, large = doors[0], doors[-1]
        growth = large["peak_rss"] / small["peak_rss"]
        verdict = "flat" if growth < 1.15 else "GROWS"
        print(
            "doors peak RSS by size: "
            + "; ".join(f"{r['rows']:,} -> {r['peak_rss'] / 1e6:,.0f} MB" for r in doors)
            + f" (x{growth:.2f} for x{large['rows'] / small['rows']:.0f} rows: {verdict})"
        )
    end = os.getloadavg()
    print(f"load average at the end {end[0]:.1f} / {end[1]:.1f}")


def _line(r: dict) -> str:
    ok = "met" if r["peak_rss"] < TARGET_MB * 1e6 else "MISSED"
    cpu = "" if r["server_cpu"] is None else f", server CPU {r['server_cpu']:.0f} s"
    return (
        f"{r['kind']:<9} {r['loaded']:>12,} rows ({_mb(r['file_bytes'])} file): "
        f"{r['seconds']:,.1f} s, {r['rows_per_s']:,.0f} rows/s, peak RSS "
        f"{r['peak_rss'] / 1e6:,.0f} MB (target < {TARGET_MB} MB: {ok}); client CPU "
        f"{r['client_cpu']:.0f} s{cpu}; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
    )


if __name__ == "__main__":
    main()
