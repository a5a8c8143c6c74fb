"""`python -m bench.import_addresses`: `porte import addresses` vs `ogr2ogr` (GDAL, PG_USE_COPY).

1. generates a SYNTHETIC BAN-format CSV of about 1 M rows (``--rows``) from Bruz's 5,760 real
   doors repeated with coordinate offsets and suffixed ids (the file name says synthetic);
2. starts a throwaway PostGIS cluster (or uses ``--database-url``, an owner URL) at schema head;
3. loads the file with ``porte import addresses`` (a child process: wall time and peak RSS);
4. loads the same file into the same database with ``ogr2ogr -f PostgreSQL`` and
   ``--config PG_USE_COPY YES`` (points from lon/lat, EPSG:4326, GiST index);
5. prints rows/s of each, where our time goes, the ratio (target ≥ 1.5) and our peak memory
   (target < 500 MB); ``--repeat N`` alternates N loads of each and prints the median ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
BAL = ROOT / "data" / "addresses" / "bal_35047_bruz.csv"
BAN_HEADER = [
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom_voie", "certification_commune", "cad_parcelles",
]  # fmt: skip


def generate(dst: Path, rows: int) -> int:
    """Write a SYNTHETIC BAN CSV: Bruz's real doors repeated on a grid of offsets (~0.1° apart),
    ids suffixed with the copy number. Returns the number of rows written."""
    with open(BAL, encoding="utf-8-sig", newline="") as fh:
        doors = [r for r in csv.DictReader(fh, delimiter=";") if r["numero"] != "99999"]
    base = [
        [
            r["cle_interop"], "", r["numero"], r["suffixe"], r["voie_nom"], "35170",
            r["commune_insee"], r["commune_nom"], "", "", r["x"], r["y"], float(r["long"]),
            float(r["lat"]), r["position"], "", r["lieudit_complement_nom"], "BRUZ",
            r["voie_nom"].upper(), "commune", "commune", r["certification_commune"],
            r["cad_parcelles"],
        ]
        for r in doors
    ]  # fmt: skip
    written = 0
    with open(dst, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, delimiter=";", lineterminator="\n")
        w.writerow(BAN_HEADER)
        copy = 0
        while written < rows:
            dx, dy = (copy % 20) * 0.1, (copy // 20) * 0.1
            for r in base:
                if written >= rows:
                    break
                row = list(r)
                row[0] = f"{r[0]}_s{copy}"
                row[12] = f"{r[12] + dx:.7f}"
                row[13] = f"{r[13] + dy:.7f}"
                w.writerow(row)
                written += 1
            copy += 1
    return written


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    """One measured load."""

    seconds: float  # wall clock
    peak_rss: int  # bytes, the client process
    client_cpu: float  # seconds (user + system) of the client process
    server_cpu: float | None  # seconds of the PostgreSQL backends it used (throwaway cluster)
    output: str

    def cpu(self) -> float | None:
        """Client + server CPU seconds (a figure the machine's other load barely changes)."""
        return None if self.server_cpu is None else self.client_cpu + self.server_cpu


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def server_children_cpu(pgdata: Path | None) -> float | None:
    """CPU seconds of the postmaster's exited children (backends), from /proc."""
    if pgdata is None:
        return None
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); cutime and cstime are fields 16 and 17
        return (int(fields[13]) + int(fields[14])) / _clock_ticks()
    except (OSError, ValueError, IndexError):
        return None


def run_measured(args: list[str], env: dict[str, str], pgdata: Path | None) -> Run:
    """Run a child; measure wall time, its peak RSS and CPU, and the server's CPU."""
    before = server_children_cpu(pgdata)
    t0 = time.perf_counter()
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code
    if code != 0:
        raise SystemExit(f"{args[0]} failed (exit {code}):\n{out[-3000:]}")
    time.sleep(0.5)  # let the postmaster reap the backend
    after = server_children_cpu(pgdata)
    server = None if before is None or after is None else after - before
    return Run(seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, server, out)


def psql(url: str, sql: str) -> str:
    """Run SQL with psql (owner URL)."""
    u = url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run(
        ["psql", u, "-Atqc", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def pg_dsn(url: str) -> str:
    """An OGR ``PG:`` connection string from a URL."""
    u = urlparse(url.replace("postgresql+asyncpg://", "postgresql://"))
    return (
        f"PG:host={u.hostname} port={u.port or 5432} dbname={u.path.lstrip('/')} "
        f"user={u.username} password={u.password}"
    )


def line(name: str, rows: int, r: Run) -> str:
    """One tool's figures."""
    cpu = r.cpu()
    return (
        f"{name}: {rows:,} rows in {r.seconds:.2f} s -> {rows / r.seconds:,.0f} rows/s;"
        f" peak memory {r.peak_rss / 1e6:,.0f} MB; CPU client {r.client_cpu:.1f} s"
        + (
            f" + server {r.server_cpu:.1f} s -> {rows / cpu:,.0f} rows per CPU-second"
            if cpu
            else ""
        )  # noqa: E501
    )


def main() -> None:
    """Generate, load with both tools, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--database-url", help="owner URL of an existing PostGIS (default: throwaway)")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument(
        "--repeat", type=int, default=1, help="load N times with each tool, alternately"
    )
    opts = ap.parse_args()
    if not shutil.which("ogr2ogr"):
        raise SystemExit("ogr2ogr not found: apt-get install -y gdal-bin")

    work = Path(tempfile.mkdtemp(prefix="porte-bench-import-"))
    os.chmod(work, 0o755)
    csv_path = work / f"synthetic_ban_{opts.rows // 1000}k_from_bruz.csv"
    t0 = time.perf_counter()
    n = generate(csv_path, opts.rows)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"SYNTHETIC BAN-format file (Bruz's real doors repeated with offsets): {csv_path}")
    print(f"  {n:,} rows, {size_mb:,.0f} MB, generated in {time.perf_counter() - t0:.1f} s")

    cluster = None
    try:
        if opts.database_url:
            owner = opts.database_url
        else:
            sys.path.insert(0, str(ROOT))
            from app.migrate import upgrade
            from app.pgcluster import Cluster

            cluster = Cluster(work / "db", free_port())
            cluster.start()
            # No autovacuum worker in the middle of a measurement (its CPU would be counted).
            cluster.psql("ALTER SYSTEM SET autovacuum = off")
            cluster.psql("SELECT pg_reload_conf()")
            cluster.create_database("bench")
            owner = cluster.url("owner", "bench")
            upgrade(owner)
        env = dict(os.environ, OWNER_DATABASE_URL=owner, DATABASE_URL=owner)
        pgdata = cluster.pgdata if cluster is not None else None
        porte = [sys.executable, "-m", "app.cli", "import", "addresses", str(csv_path), "--json"]
        # ogr2ogr's fast settings: COPY rather than INSERT, 100,000 rows per transaction, the
        # spatial index built once at the end; its table has no other index.
        ogr = [
            "ogr2ogr", "-f", "PostgreSQL", pg_dsn(owner), str(csv_path),
            "--config", "PG_USE_COPY", "YES",
            "-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat",
            "-oo", "SEPARATOR=SEMICOLON", "-a_srs", "EPSG:4326",
            "-nln", "bench_ogr", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
            "-gt", "100000", "-overwrite",
        ]  # fmt: skip
        gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout
        ratios, cpu_ratios, peaks = [], [], []
        for attempt in range(1, opts.repeat + 1):
            if opts.repeat > 1:
                print(f"-- run {attempt} of {opts.repeat}")
            psql(owner, "TRUNCATE address CASCADE; DROP TABLE IF EXISTS bench_ogr")
            load_before = os.getloadavg()[0]
            ours = run_measured(porte, env, pgdata)
            loaded = int(psql(owner, "SELECT count(*) FROM address"))
            details = json.loads(ours.output[ours.output.index("{") :])
            theirs = run_measured(ogr, env, pgdata)
            ogr_rows = int(psql(owner, "SELECT count(*) FROM bench_ogr"))
            load = os.getloadavg()[0]
            print(line("porte import addresses", loaded, ours))
            inside = details.get("seconds", 0.0)
            print(
                f"  inside the import ({inside:.2f} s): COPY {details.get('copy_seconds', '?')} s"
                f" (parse + COPY BINARY, overlapped), geocoder counts"
                f" {details.get('geocode_seconds', 0)} s, index rebuild"
                f" {details.get('index_rebuild_seconds', 0)} s"
                f" ({details.get('indexes_rebuilt', 0)} indexes: ban_id unique, geocoder's"
                f" street/number, GiST, source file), ANALYZE {details.get('analyze_seconds', 0)}"
                f" s; outside it (command start-up, allocation check, exit)"
                f" {ours.seconds - inside:.2f} s"
            )
            print(line(f"ogr2ogr ({gdal.strip()})", ogr_rows, theirs))
            ratio = (loaded / ours.seconds) / (ogr_rows / theirs.seconds)
            ratios.append(ratio)
            peaks.append(ours.peak_rss)
            print(
                f"ratio, wall clock (ours / ogr2ogr): {ratio:.2f}  (target >= 1.5: "
                f"{'met' if ratio >= 1.5 else 'NOT met'}; 1-min load average {load_before:.1f}"
                f" before, {load:.1f} after, on {os.cpu_count()} CPUs)"
            )
            if ours.cpu() and theirs.cpu():
                cpu_ratio = (loaded / ours.cpu()) / (ogr_rows / theirs.cpu())
                cpu_ratios.append(cpu_ratio)
                print(f"ratio, CPU (rows per CPU-second, ours / ogr2ogr): {cpu_ratio:.2f}")
        if opts.repeat > 1:
            print(
                f"median of {opts.repeat} runs: ratio wall clock {statistics.median(ratios):.2f}"
                f" (runs: {', '.join(f'{r:.2f}' for r in ratios)})"
                + (f", CPU {statistics.median(cpu_ratios):.2f}" if cpu_ratios else "")
            )
        peak = max(peaks)
        print(
            f"our peak memory: {peak / 1e6:,.0f} MB  (target < 500 MB: "
            f"{'met' if peak < 500e6 else 'NOT met'})"
        )
    finally:
        if cluster is not None:
            cluster.destroy()
        if opts.keep:
            print(f"kept {csv_path}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
