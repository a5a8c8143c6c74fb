"""Statistical disclosure control of the analysts' progress (app.disclosure): time and cost.

SYNTHETIC campaigns: N districts of 20 to 400 doors in turfs, half of them visited in each of
two rounds (up to half their doors), outcomes drawn 50 % not home, 30 % talked, 10 % refused, 4 %
moved, 3 % no access, 3 % do not knock. Prints, per size, the time of one protection (both rounds),
how many counts are hidden because they are below k (primary) and how many more to protect them
(complementary), the share of counts >= k that stays shown, and whether the campaign's own counts
stay shown. No reference tool is run: tau-Argus (the reference cell-suppression tool of national
statistical offices) is a Java desktop application not available on this machine; the figures are
ours alone. One command: ``.venv/bin/python -m bench.disclosure [--sizes 20 50 200 1000]``.
"""

from __future__ import annotations

import argparse
import random
import time

from app.disclosure import CAMPAIGN, protect_progress

OUTCOMES = ("not_home", "talked", "refused", "moved", "no_access", "do_not_knock")
WEIGHTS = (0.5, 0.3, 0.1, 0.04, 0.03, 0.03)


def synthetic(n: int, seed: int = 1) -> tuple[dict, dict]:
    """SYNTHETIC doors and outcome counts for n districts and two rounds."""
    rng = random.Random(seed)
    doors = {f"S{i:05d}": rng.randint(20, 400) for i in range(n)}
    counts: dict = {}
    for area, d in doors.items():
        counts[area] = {}
        for r in (1, 2):
            visited = rng.randint(0, d // 2) if rng.random() < 0.5 else 0
            by = dict.fromkeys(OUTCOMES, 0)
            for o in rng.choices(OUTCOMES, WEIGHTS, k=visited):
                by[o] += 1
            counts[area][r] = by
    return doors, counts


def measure(n: int, k: int) -> dict[str, object]:
    doors, counts = synthetic(n)
    t = time.perf_counter()
    pub = protect_progress(doors, counts, rounds=[1, 2], outcomes=OUTCOMES, k=k)
    elapsed = time.perf_counter() - t
    cells = small = big = big_hidden = 0
    for area in [*pub.areas, CAMPAIGN]:
        entry = pub.campaign if area == CAMPAIGN else pub.areas[area]
        who = list(pub.areas) if area == CAMPAIGN else [area]
        for r in (1, 2):
            truth = {o: sum(counts[a][r][o] for a in who) for o in OUTCOMES}
            truth[""] = sum(truth.values())
            shown = dict(entry["rounds"][r]["outcomes"], **{"": entry["rounds"][r]["visited"]})
            for key, value in truth.items():
                cells += 1
                if 0 < value < k:
                    small += 1
                elif value >= k:
                    big += 1
                    big_hidden += shown[key] is None
    camp = pub.campaign["rounds"]
    camp_shown = sum(
        v is not None for r in (1, 2) for v in (camp[r]["visited"], *camp[r]["outcomes"].values())
    )
    return {
        "districts": n,
        "seconds": round(elapsed, 2),
        "counts": cells,
        "below k (hidden)": small,
        ">= k": big,
        ">= k hidden too": big_hidden,
        "share >= k shown": f"{100 * (big - big_hidden) / max(big, 1):.0f} %",
        "campaign counts shown": f"{camp_shown}/14",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--k", type=int, default=11)
    args = parser.parse_args()
    for n in args.sizes:
        print(measure(n, args.k))


if __name__ == "__main__":
    main()
