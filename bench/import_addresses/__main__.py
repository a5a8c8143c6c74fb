"""`python -m bench.import_addresses`: `porte import addresses` vs `ogr2ogr` (GDAL, PG_USE_COPY).

1. generates a SYNTHETIC BAN-format CSV of about 1 M rows (``--rows``) from Bruz's 5,760 real
   doors repeated with coordinate offsets and suffixed ids (the file name says synthetic);
2. starts a throwaway PostGIS cluster (or uses ``--database-url``, an owner URL) at schema head;
3. loads the file with ``porte import addresses`` (a child process: wall time and peak RSS);
4. loads the same file into the same database with ``ogr2ogr -f PostgreSQL`` and
   ``--config PG_USE_COPY YES`` (points from lon/lat, EPSG:4326, GiST index);
5. prints rows/s of each, the ratio (target ≥ 1.5) and our peak memory (target < 500 MB).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a child; return (wall seconds, peak RSS in bytes, combined output)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code
    if code != 0:
        raise SystemExit(f"{args[0]} failed (exit {code}):\n{out[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, out


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


def main() -> None:
    """Generate, load with both tools, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--database-url", help="owner URL of an existing PostGIS (default: throwaway)")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
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
            cluster.create_database("bench")
            owner = cluster.url("owner", "bench")
            upgrade(owner)
        psql(owner, "TRUNCATE address CASCADE; DROP TABLE IF EXISTS bench_ogr")
        env = dict(os.environ, OWNER_DATABASE_URL=owner, DATABASE_URL=owner)

        porte = [sys.executable, "-m", "app.cli", "import", "addresses", str(csv_path), "--json"]
        ours_s, ours_rss, out = run_measured(porte, env)
        loaded = int(psql(owner, "SELECT count(*) FROM address"))
        ours_rate = loaded / ours_s
        print(f"porte import addresses: {loaded:,} rows in {ours_s:.2f} s -> {ours_rate:,.0f} rows/s,"
              f" peak memory {ours_rss / 1e6:,.0f} MB")

        ogr = [
            "ogr2ogr", "-f", "PostgreSQL", pg_dsn(owner), str(csv_path),
            "--config", "PG_USE_COPY", "YES",
            "-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat",
            "-oo", "SEPARATOR=SEMICOLON", "-a_srs", "EPSG:4326",
            "-nln", "bench_ogr", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
            "-gt", "100000", "-overwrite",
        ]  # fmt: skip
        ogr_s, ogr_rss, _ = run_measured(ogr, env)
        ogr_rows = int(psql(owner, "SELECT count(*) FROM bench_ogr"))
        ogr_rate = ogr_rows / ogr_s
        gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout
        print(f"ogr2ogr ({gdal.strip()}): {ogr_rows:,} rows in {ogr_s:.2f} s -> "
              f"{ogr_rate:,.0f} rows/s, peak memory {ogr_rss / 1e6:,.0f} MB")
        ratio = ours_rate / ogr_rate
        print(f"ratio (ours / ogr2ogr): {ratio:.2f}  (target >= 1.5: "
              f"{'met' if ratio >= 1.5 else 'NOT met'})")
        print(f"our peak memory: {ours_rss / 1e6:,.0f} MB  (target < 500 MB: "
              f"{'met' if ours_rss < 500e6 else 'NOT met'})")
    finally:
        if cluster is not None:
            cluster.destroy()
        if opts.keep:
            print(f"kept {csv_path}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
