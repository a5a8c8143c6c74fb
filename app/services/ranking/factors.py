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
from app.i18n import N_, _, number


@dataclass(frozen=True)
class Factor:
    """One thing the score may weigh: what it is, its unit and where it comes from."""

    name: str
    label: str  # English msgids: ``shown()`` gives them in the current language
    unit: str
    source: str
    needs: str = "tiles"  # tiles | doors | election | side | swing | supporters | round

    def shown(self) -> dict[str, str]:
        """Name, label, unit and source as the reader reads them (current language)."""
        return {
            "name": self.name,
            "label": _(self.label),
            "unit": _(self.unit),
            "source": _(self.source),
        }


FILOSOFI = N_("INSEE Filosofi 2019, 200 m tiles allocated to districts by doors (area where none)")
# Labels, units and sources are English msgids, shown translated (``Factor.shown``).
_CATALOGUE = (
    Factor("population", N_("Population"), N_("persons"), FILOSOFI),
    Factor("households", N_("Households"), N_("households"), FILOSOFI),
    Factor("poor_share", N_("Poor households"), N_("share of households"), FILOSOFI),
    Factor("social_housing_share", N_("Social housing"), N_("share of dwellings"), FILOSOFI),
    Factor("owners_share", N_("Owner households"), N_("share of households"), FILOSOFI),
    Factor(
        "single_person_share",
        N_("Single-person households"),
        N_("share of households"),
        FILOSOFI,
    ),
    Factor(
        "large_family_share", N_("Households of 5+ persons"), N_("share of households"), FILOSOFI
    ),
    Factor(
        "living_standard",
        N_("Mean standard of living"),
        N_("EUR per person per year"),
        N_(
            "INSEE Filosofi 2019, 200 m tiles allocated to districts by doors (area where none) "
            "(ind_snv / ind)"
        ),
    ),
    Factor("age_18_24_share", N_("Aged 18-24"), N_("share of persons"), FILOSOFI),
    Factor("age_25_39_share", N_("Aged 25-39"), N_("share of persons"), FILOSOFI),
    Factor("age_40_54_share", N_("Aged 40-54"), N_("share of persons"), FILOSOFI),
    Factor("age_55_64_share", N_("Aged 55-64"), N_("share of persons"), FILOSOFI),
    Factor("age_65_79_share", N_("Aged 65-79"), N_("share of persons"), FILOSOFI),
    Factor("age_80p_share", N_("Aged 80+"), N_("share of persons"), FILOSOFI),
    Factor(
        "imputed_share",
        N_("Households from imputed tiles"),
        N_("share of households"),
        N_(
            "INSEE Filosofi 2019, 200 m tiles allocated to districts by doors (area where none) "
            "(i_est_200 = 1)"
        ),
    ),
    Factor(
        "door_count", N_("Doors"), N_("doors"), N_("BAN/BAL addresses in the district"), "doors"
    ),
    Factor(
        "households_per_door",
        N_("Households per door (flats)"),
        N_("households per door"),
        N_("Filosofi households / BAN doors"),
        "doors",
    ),
    Factor(
        "registered",
        N_("Registered voters"),
        N_("voters"),
        N_("Chosen election (Ministère de l'Intérieur results per polling station)"),
        "election",
    ),
    Factor(
        "abstention_rate",
        N_("Abstention"),
        N_("share of registered"),
        N_("Chosen election"),
        "election",
    ),
    Factor(
        "side_score",
        N_("Our side's score"),
        N_("share of votes cast"),
        N_("Chosen election, votes of the campaign's side"),
        "side",
    ),
    Factor(
        "closeness",
        N_("Closeness of the result"),
        N_("1 - |our share - best rival's share|"),
        N_("Chosen election, campaign's side vs best other candidate"),
        "side",
    ),
    Factor(
        "swing",
        N_("Swing (absolute)"),
        N_("points of % of votes cast, absolute: |our share now - our share then|"),
        N_(
            "Chosen election vs the reference (earlier) election, votes of the campaign's side; "
            "the signed change (positive = our side gained) is each district's swing_change"
        ),
        "swing",
    ),
    Factor(
        "supporters",
        N_("Consented supporters"),
        N_("supporters (published counts only: below k, or hidden with them, count 0)"),
        N_("Campaign supporters, active and located"),
        "supporters",
    ),
    Factor(
        "coverage",
        N_("Coverage of the current round"),
        N_("share of doors visited"),
        N_("Campaign visits in the current round (published counts of visited doors only)"),
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

RULES = N_(
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
                _("Unknown factor {name!r}. Known factors: {known}.").format(
                    name=name, known=", ".join(FACTORS)
                ),
                field=f"weights.{name}",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                _("The weight of {name!r} must be a number.").format(name=name),
                field=f"weights.{name}",
            )
        if not -100 <= float(value) <= 100:
            raise InvalidInput(
                _("The weight of {name!r} must be between -100 and 100.").format(name=name),
                field=f"weights.{name}",
            )
        out[name] = float(value)
    return out


def preset_weights(preset: str) -> dict[str, float]:
    """The weights of a named preset; 422 for an unknown one."""
    if preset not in PRESETS:
        raise InvalidInput(
            _("Unknown preset {preset!r}. Choose one of: {presets}.").format(
                preset=preset, presets=", ".join(PRESETS)
            ),
            field="preset",
        )
    return dict(PRESETS[preset])


def fmt(value: float, unit: str) -> str:
    """A factor's value as a person reads it (shares in %, swings in points), in the current
    language's number format (``65,1 %`` in French). ``unit``: the factor's English unit."""
    if unit.startswith("share") or unit.startswith("1 -"):
        return _("{value} %").format(value=number(value * 100, 1))
    if unit.startswith("points"):
        return _("{value} pts").format(value=number(value, 1))
    if abs(value) >= 100:
        return number(value)
    return number(value, 2)


def signed(value: float) -> str:
    """A contribution with its sign (``+0,60``), in the current language's number format."""
    return ("+" if value >= 0 else "-") + number(abs(value), 2)


def reasons(district: dict[str, Any], n: int = 3) -> list[str]:
    """The district's first ``n`` reasons, in words (largest contributions first), in the
    current language: ``Score de notre camp 65,1 % (0,6 écart-type au-dessus de la moyenne)
    +0,60``."""
    out = []
    for c in district["contributions"]:
        if c["contribution"] == 0:
            continue
        f = FACTORS[c["factor"]]
        value = _("n/a") if c["value"] is None else fmt(c["value"], f.unit)
        text = (
            _("{label} {value} ({sd} sd above mean) {contribution}")
            if c["standardised"] > 0
            else _("{label} {value} ({sd} sd below mean) {contribution}")
        )
        out.append(
            text.format(
                label=_(f.label),
                value=value,
                sd=number(abs(c["standardised"]), 1),
                contribution=signed(c["contribution"]),
            )
        )
        if len(out) == n:
            break
    return out
