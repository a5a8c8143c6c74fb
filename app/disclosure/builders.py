"""The tables the services publish, built so that each confidential cell is in at most two
relations: one partition of counts with no total (supporters per district or tile), and progress
(doors, visited doors and outcomes per area and round, with the campaign's totals).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.disclosure.solver import Key, Table, protect


def protect_partition(counts: Mapping[Key, int], k: int) -> dict[Key, int | None]:
    """One partition of counts with no published total (supporters per district or per tile):
    every cell below k is hidden, and nothing else relates the cells."""
    table = Table()
    for key, value in counts.items():
        table.add(key, value)
    pub = protect(table, k)
    return {key: pub[key] for key in counts}


CAMPAIGN = "__campaign__"
# What hiding costs the reader, relative to one district's outcome count: the campaign's own
# counts are what analysts read first, then each district's visited doors.
CAMPAIGN_WEIGHT = 10.0
AREA_VISITED_WEIGHT = 2.0
VISITED = ""  # the key of a round's visited doors among its outcomes


@dataclass
class ProgressPublication:
    """Doors (public) and, per round, visited doors and doors by latest outcome, or None."""

    campaign: dict[str, Any]
    areas: dict[str, dict[str, Any]]
    hidden: int
    too_small: dict[str, int]  # areas left out (fewer than k doors) -> their doors


def protect_progress(
    doors: Mapping[str, int],
    counts: Mapping[str, Mapping[int, Mapping[str, int]]],
    *,
    rounds: Sequence[int],
    outcomes: Sequence[str],
    k: int,
) -> ProgressPublication:
    """Progress as analysts see it: for each area (a district, or '-' for doors outside every
    district) and the campaign, the doors (public) and, per round, visited doors and doors by
    latest outcome, each round one two-way table with margins::

        area.visited(r)   = sum over outcomes of area.outcome(r)
        campaign.x(r)     = sum over areas of area.x(r)          (x = visited or an outcome)

    ``counts[area][round][outcome]`` = doors of the area whose latest outcome in that round is
    that outcome. A count is bounded by its area's doors (public).

    Zeros are shown (no door visited describes nobody), so a hidden count is known to be at
    least 1; that is only safe where an area has at least k doors, so an area with fewer is
    left out, of its own line and of the campaign's (``too_small`` lists them with their doors):
    otherwise "every other district shows 0" would pin the campaign's hidden count on those few
    doors. Flagged doors, pending doors and numbers of visits are not part of it: each would tie
    the rounds and the outcomes together by near-equalities (a flagged door is not pending;
    visits >= visited doors) that let a reader narrow a hidden cell (docs/privacy.md).
    """
    table = Table()
    areas = sorted(a for a, n in doors.items() if n >= k)
    too_small = {a: n for a, n in sorted(doors.items()) if n < k}
    total_doors = sum(doors[a] for a in areas)
    for r in rounds:
        camp = dict.fromkeys(outcomes, 0)
        for area in areas:
            by = counts.get(area, {}).get(r, {})
            visited = 0
            for o in outcomes:
                n = int(by.get(o, 0))
                camp[o] += n
                visited += n
                table.add((area, r, o), n, upper=doors[area])
            table.add((area, r, VISITED), visited, upper=doors[area], weight=AREA_VISITED_WEIGHT)
            table.relate((area, r, VISITED), [(area, r, o) for o in outcomes])
        for o in outcomes:
            table.add((CAMPAIGN, r, o), camp[o], upper=total_doors, weight=CAMPAIGN_WEIGHT)
            table.relate((CAMPAIGN, r, o), [(area, r, o) for area in areas])
        table.add(
            (CAMPAIGN, r, VISITED), sum(camp.values()), upper=total_doors, weight=CAMPAIGN_WEIGHT
        )
        table.relate((CAMPAIGN, r, VISITED), [(CAMPAIGN, r, o) for o in outcomes])
        # the visited column: campaign = sum of areas (a second relation of each area's total)
        table.relate((CAMPAIGN, r, VISITED), [(area, r, VISITED) for area in areas])
    pub = protect(table, k, show_zeros=True)

    def entry(area: str, n_doors: int) -> dict[str, Any]:
        return {
            "doors": n_doors,
            "rounds": {
                r: {
                    "visited": pub[(area, r, VISITED)],
                    "outcomes": {o: pub[(area, r, o)] for o in outcomes},
                }
                for r in rounds
            },
        }

    return ProgressPublication(
        campaign=entry(CAMPAIGN, total_doors),
        areas={area: entry(area, doors[area]) for area in areas},
        hidden=len(pub.hidden),
        too_small=too_small,
    )
