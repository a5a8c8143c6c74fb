"""The factors a district's score may weigh, the presets, and the rules that check weights.

The catalogue's order is the order of the value and z-score arrays stored per district
(``ranking_value.v`` / ``.z``, built by ``app/sql/ranking_values.sql``, whose first line lists the
same names: ``tests/test_ranking_package.py`` checks they agree). The last two factors come from
the campaign's own data (supporters, visits) and are refreshed on their own
(``app/sql/ranking_campaign_factors.sql``); the others from public data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidInput


@dataclass(frozen=True)
class Factor:
    """One thing the score may weigh: what it is, its unit and where it comes from."""

    name: str
    label: str
    unit: str
    source: str
    needs: str = "tiles"  # tiles | doors | election | side | swing | supporters | round


FILOSOFI = "INSEE Filosofi 2019, 200 m tiles allocated to districts by doors (area where none)"
_CATALOGUE = (
    Factor("population", "Population", "persons", FILOSOFI),
    Factor("households", "Households", "households", FILOSOFI),
    Factor("poor_share", "Poor households", "share of households", FILOSOFI),
    Factor("social_housing_share", "Social housing", "share of dwellings", FILOSOFI),
    Factor("owners_share", "Owner households", "share of households", FILOSOFI),
    Factor("single_person_share", "Single-person households", "share of households", FILOSOFI),
    Factor("large_family_share", "Households of 5+ persons", "share of households", FILOSOFI),
    Factor(
        "living_standard",
        "Mean standard of living",
        "EUR per person per year",
        FILOSOFI + " (ind_snv / ind)",
    ),
    Factor("age_18_24_share", "Aged 18-24", "share of persons", FILOSOFI),
    Factor("age_25_39_share", "Aged 25-39", "share of persons", FILOSOFI),
    Factor("age_40_54_share", "Aged 40-54", "share of persons", FILOSOFI),
    Factor("age_55_64_share", "Aged 55-64", "share of persons", FILOSOFI),
    Factor("age_65_79_share", "Aged 65-79", "share of persons", FILOSOFI),
    Factor("age_80p_share", "Aged 80+", "share of persons", FILOSOFI),
    Factor(
        "imputed_share",
        "Households from imputed tiles",
        "share of households",
        FILOSOFI + " (i_est_200 = 1)",
    ),
    Factor("door_count", "Doors", "doors", "BAN/BAL addresses in the district", "doors"),
    Factor(
        "households_per_door",
        "Households per door (flats)",
        "households per door",
        "Filosofi households / BAN doors",
        "doors",
    ),
    Factor(
        "registered",
        "Registered voters",
        "voters",
        "Chosen election (Ministère de l'Intérieur results per polling station)",
        "election",
    ),
    Factor("abstention_rate", "Abstention", "share of registered", "Chosen election", "election"),
    Factor(
        "side_score",
        "Our side's score",
        "share of votes cast",
        "Chosen election, votes of the campaign's side",
        "side",
    ),
    Factor(
        "closeness",
        "Closeness of the result",
        "1 - |our share - best rival's share|",
        "Chosen election, campaign's side vs best other candidate",
        "side",
    ),
    Factor(
        "swing",
        "Swing (absolute)",
        "points of % of votes cast, absolute: |our share now - our share then|",
        "Chosen election vs the reference (earlier) election, votes of the campaign's side; "
        "the signed change (positive = our side gained) is each district's swing_change",
        "swing",
    ),
    Factor(
        "supporters",
        "Consented supporters",
        "supporters (published counts only: below k, or hidden with them, count 0)",
        "Campaign supporters, active and located",
        "supporters",
    ),
    Factor(
        "coverage",
        "Coverage of the current round",
        "share of doors visited",
        "Campaign visits in the current round (published counts of visited doors only)",
        "round",
    ),
)
FACTORS: dict[str, Factor] = {f.name: f for f in _CATALOGUE}
NAMES: tuple[str, ...] = tuple(FACTORS)
# 1-based positions in the stored arrays (SQL arrays start at 1).
POSITION: dict[str, int] = {name: i for i, name in enumerate(NAMES, start=1)}
CAMPAIGN_FACTORS = ("supporters", "coverage")  # refreshed apart, when the campaign's data moves
REFERENCE_FACTORS = tuple(n for n in NAMES if n not in CAMPAIGN_FACTORS)

PRESETS: dict[str, dict[str, float]] = {
    # Get our voters out: where our side scores high and many stayed home.
    "mobilisation": {"side_score": 1.0, "abstention_rate": 1.0, "supporters": 0.5},
    # Convince: where the result was close and votes moved most (either way), weighted by how many
    # voters there are.
    "persuasion": {"closeness": 1.0, "swing": 0.5, "registered": 0.25},
    # Cover ground: least visited first, big districts first.
    "coverage": {"coverage": -1.0, "door_count": 0.5},
}
DEFAULT_PRESET = "mobilisation"

RULES = (
    "Each factor is standardised across the districts of the campaign's territory (z = (value - "
    "mean) / standard deviation). A district with no value for a factor counts as the mean (z = "
    "0, flagged 'missing'); a factor with no data or no spread contributes 0 and is listed with "
    "its reason. contribution = weight x z x damping, damping = 1 - coverage of the current "
    "round, and the score is the sum of the contributions. Supporter and visited-door counts "
    "enter as published: a count below k, or hidden with one (so that it cannot be worked out "
    "by subtraction), counts as 0 and is shown blank."
)


def parse_side(side: str | None) -> list[str] | None:
    """Side tokens (nuance codes or candidate labels), upper-cased; None when empty. Separated
    by ``|`` when the text holds one (a label may hold a comma: ``join_side``), else by commas or
    semicolons."""
    if not side:
        return None
    tokens = [t.strip().upper() for t in re.split(r"\|" if "|" in side else r"[,;]", side)]
    return [t for t in tokens if t] or None


def join_side(tokens: list[str]) -> str:
    """Tokens as one text that ``parse_side`` splits back into them."""
    return (" | " if any("," in t or ";" in t for t in tokens) else ", ").join(tokens)


def validate_weights(weights: dict[str, Any]) -> dict[str, float]:
    """Weights keyed by known factor names with finite numbers; 422 naming the bad one."""
    out: dict[str, float] = {}
    for name, value in weights.items():
        if name not in FACTORS:
            raise InvalidInput(
                f"Unknown factor {name!r}. Known factors: {', '.join(FACTORS)}.",
                field=f"weights.{name}",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"The weight of {name!r} must be a number.", field=f"weights.{name}")
        if not -100 <= float(value) <= 100:
            raise InvalidInput(
                f"The weight of {name!r} must be between -100 and 100.", field=f"weights.{name}"
            )
        out[name] = float(value)
    return out


def preset_weights(preset: str) -> dict[str, float]:
    """The weights of a named preset; 422 for an unknown one."""
    if preset not in PRESETS:
        raise InvalidInput(
            f"Unknown preset {preset!r}. Choose one of: {', '.join(PRESETS)}.", field="preset"
        )
    return dict(PRESETS[preset])


def fmt(value: float, unit: str) -> str:
    """A factor's value as a person reads it (shares in %, swings in points)."""
    if unit.startswith("share") or unit.startswith("1 -"):
        return f"{value * 100:.1f} %"
    if unit.startswith("points"):
        return f"{value:.1f} pts"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def reasons(district: dict[str, Any], n: int = 3) -> list[str]:
    """The district's first ``n`` reasons, in words (largest contributions first)."""
    out = []
    for c in district["contributions"]:
        if c["contribution"] == 0:
            continue
        f = FACTORS[c["factor"]]
        value = "n/a" if c["value"] is None else fmt(c["value"], f.unit)
        direction = "above" if c["standardised"] > 0 else "below"
        out.append(
            f"{f.label} {value} ({abs(c['standardised']):.1f} sd {direction} mean) "
            f"{c['contribution']:+.2f}"
        )
        if len(out) == n:
            break
    return out
