"""Benchmark: cut 10,000 doors into turfs of 150 (split + walking order), against k-means.

    .venv/bin/python -m bench.turf_cut        (or bench/turf_cut/run.sh)

Doors: 10,000 SYNTHETIC doors (generated here: streets with odd/even sides, not real addresses),
plus, for reference, Bruz's 5,760 REAL doors (data/addresses/bal_35047_bruz.csv).
Prints the time and balance of ``app.geo.turf_split.cut_plan``, and the
reference: scikit-learn's KMeans into the same number of clusters (time and balance; k-means
neither balances nor orders the doors). Target: < 1 s for 10,000 doors.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time

import numpy as np

from app.config import REPO_ROOT
from app.geo.turf_split import balance, cut_plan, project_local

BAL_CANDIDATES = [REPO_ROOT / "data" / "addresses" / "bal_35047_bruz.csv"]


Doors = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def synthetic_doors(n: int, seed: int = 42) -> Doors:
    """SYNTHETIC doors along random straight streets, both sides, around Antony's latitude."""
    rng = np.random.default_rng(seed)
    n_streets = max(1, n // 45)
    street = rng.integers(0, n_streets, n)
    angle = rng.uniform(0, np.pi, n_streets)
    cx, cy = rng.uniform(-1500, 1500, (2, n_streets))
    along = rng.uniform(-250, 250, n)
    side = rng.integers(0, 2, n)
    offset = np.where(side == 1, 7.0, -7.0)
    x = cx[street] + along * np.cos(angle[street]) + offset * np.sin(angle[street])
    y = cy[street] + along * np.sin(angle[street]) - offset * np.cos(angle[street])
    lat = 48.75 + y / 111_195
    lon = 2.30 + x / (111_195 * np.cos(np.radians(48.75)))
    return lon, lat, street, side


def bruz_doors() -> Doors | None:
    """Bruz's REAL doors (numbered addresses of the BAL), or None when the file is absent."""
    path = next((p for p in BAL_CANDIDATES if p.exists()), None)
    if path is None:
        return None
    with path.open(encoding="utf-8-sig") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter=";") if r["numero"] != "99999"]
    _, street = np.unique([r["voie_nom"].lower() for r in rows], return_inverse=True)
    return (
        np.array([float(r["long"]) for r in rows]),
        np.array([float(r["lat"]) for r in rows]),
        street,
        np.array([int(r["numero"]) % 2 for r in rows]),
    )


def run(label: str, doors, per: int, repeats: int) -> None:
    """Time cut_plan and k-means on one set of doors and print the comparison."""
    lon, lat, street, side = doors
    times, cpu = [], []
    plan = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        plan = cut_plan(lon, lat, per, streets=street, parity=side)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert plan is not None
    b = plan.balance
    walk = sum(t.walk_length_m for t in plan.turfs)
    stored = sum(t.input_order_length_m for t in plan.turfs)
    comp = [t.compactness for t in plan.turfs]
    best, median = min(times), statistics.median(times)
    print(f"\n== {label}: {len(lon):,} doors, turfs of {per}")
    print(
        f"cut_plan (split + walking order): best {best * 1000:.0f} ms, median "
        f"{median * 1000:.0f} ms over {repeats} runs (CPU time: best {min(cpu) * 1000:.0f} ms)"
        f"  [target < 1000 ms: {'OK' if best < 1 else 'MISSED'}]"
    )
    print(
        f"  turfs {b['turfs']}, sizes {b['min']}..{b['max']} (mean {b['mean']:.1f}), "
        f"max deviation {b['max_deviation']:.1%} [promise <= 15 %]"
    )
    print(
        f"  walking order {walk / 1000:.1f} km vs input order {stored / 1000:.1f} km "
        f"({walk / stored:.0%}); streets split {plan.streets_split}; compactness "
        f"min {min(comp):.2f}, median {statistics.median(comp):.2f}"
    )
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        print("  reference: scikit-learn not installed, k-means comparison skipped")
        return
    xy, _ = project_local(lon, lat)
    k = b["turfs"]
    t0 = time.perf_counter()
    labels = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(xy)
    km_time = time.perf_counter() - t0
    kb = balance(labels)
    print(
        f"reference scikit-learn KMeans(k={k}, n_init=1), clustering only: "
        f"{km_time * 1000:.0f} ms, sizes {kb['min']}..{kb['max']}, max deviation "
        f"{kb['max_deviation']:.0%}"
    )
    print(
        f"  ratio: cut_plan (with walking orders) takes {best / km_time:.2f}x k-means' time "
        f"and is balanced ({b['max_deviation']:.1%} vs {kb['max_deviation']:.0%})"
    )


def main() -> None:
    """Parse options and run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doors", type=int, default=10_000)
    ap.add_argument("--per", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    print(f"machine: {cores} cores, load average {load:.1f}")
    if load > cores:
        print("  warning: the machine is busy; wall times are inflated (compare CPU times)")
    cut_plan(*synthetic_doors(500)[:2], 50)  # warm-up (imports, BLAS)
    run(
        "SYNTHETIC doors (generated, not real)", synthetic_doors(args.doors), args.per, args.repeats
    )
    real = bruz_doors()
    if real is not None:
        run("Bruz, REAL doors (BAL 35047)", real, args.per, args.repeats)
    else:
        print("\nBruz BAL file not found: real-door run skipped")


if __name__ == "__main__":
    main()
