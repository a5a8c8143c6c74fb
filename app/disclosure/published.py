"""The counts shown per district by the ranking, its exports, OGC items and district tiles,
and how a reader gets them: public counts blanked below k, confidential ones as published.
"""

from __future__ import annotations

from typing import Any


def blank_below(value: float | None, k: int) -> float | None:
    """Public reference counts (INSEE, BAN, election results): blank below k, INSEE's own rule.
    They protect nothing (the data are public) but read the same as the confidential ones."""
    return None if value is not None and value < k else value


# Counts shown per district in the ranking, its exports, OGC items and district tiles. The
# confidential ones (supporters, visited_doors) reach the ranking already protected (only
# published counts enter it, see app/services/ranking/service.py); the public ones are blanked
# below k. Each has a ``<count>_suppressed`` flag. The estimated ones (INSEE's tiles shared out
# between districts) have fractions; the others count whole doors, voters or people.
ESTIMATED_COUNTS = ("population", "households", "poor_households", "social_dwellings")
INTEGER_COUNTS = ("doors", "registered", "abstentions", "votes_cast", "supporters", "visited_doors")
COUNTS = ESTIMATED_COUNTS + INTEGER_COUNTS
# Factors whose value is one of those counts (blanked with it).
COUNT_FACTORS = {
    "population": "population",
    "households": "households",
    "door_count": "doors",
    "registered": "registered",
    "supporters": "supporters",
}


def apply_k(district: dict[str, Any], k: int) -> dict[str, Any]:
    """A copy of a ranked district with every count below k (or already hidden) blanked and
    flagged, and the factors that repeat a blanked count blanked with it."""
    out = dict(district)
    counts = dict(district["counts"])
    flags: dict[str, bool] = {}
    for name in COUNTS:
        value = counts.get(name)
        already = bool(counts.get(f"{name}_suppressed"))
        hide = already or (value is not None and blank_below(value, k) is None)
        flags[name] = hide
        counts[name] = None if hide else value
        counts[f"{name}_suppressed"] = hide
    out["counts"] = counts
    contributions = []
    for c in district["contributions"]:
        c = dict(c)
        count = COUNT_FACTORS.get(c["factor"])
        if count and flags.get(count):
            c["value"], c["suppressed"] = None, True
        contributions.append(c)
    out["contributions"] = contributions
    values = dict(district["values"])
    for factor, count in COUNT_FACTORS.items():
        if flags.get(count):
            values[factor] = None
    out["values"] = values
    return out
