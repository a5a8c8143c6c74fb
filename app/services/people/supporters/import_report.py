"""What a supporter import tells: the CRM part of its report, the message of an all-or-nothing
import that met invalid rows, and the rejected-rows CSV (never a value from the file)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from app.i18n import _, number
from app.services.people.supporters import basis

REPORT_COLUMNS = ("row", "field", "reason")
_QUOTED = re.compile(r"""'[^']*'|"[^"]*\"""")


def source_report(run: Any) -> dict[str, Any]:
    """What a CRM import did: columns, bases, refusals, opt-outs, duplicates, geocoding."""
    levels = run.geocoded
    return {
        "source": run.reader.plan.system,
        "source_note": run.source_note,
        "columns": run.reader.plan.rows(),
        "dropped_columns": [c for c in run.reader.plan.rows() if "dropped" in c],
        "by_basis": dict(run.by_basis),
        "purposes": dict(run.purposes),
        "refused_count": run.refused_count,
        "refused": dict(run.refused_codes),
        "refused_reasons": dict(run.refused_reasons),
        "opt_outs_and_left_out": {
            code: {"rows": n, "what": basis.effect_text(code)} for code, n in run.effects.items()
        },
        "duplicates": {
            "in_file": run.duplicates["in_file"],
            "in_campaign": run.duplicates["in_campaign"],
        },
        "geocoding": {
            "door": levels["housenumber"] + levels["interpolated"],
            "street": levels["street"],
            "commune": levels["commune"],
            "none": levels["none"],
        },
        "why_none": {k: n for k, n in run.why_none.items() if k != "placed"},
        "tags": {"kept": dict(run.tags_kept), "dropped": dict(run.tags_dropped)},
        "legal_note": _(
            "Members, former members and regular contacts come without consent under GDPR "
            "art. 9-2-d only if this campaign is run by the party that keeps the file: their "
            "data may not leave it without their consent (CNIL)."
        ),
    }


def refused(rejected: int, rows: int, *, how: str) -> str:
    """What to tell when an all-or-nothing import met invalid rows."""
    return (
        _("{rejected} of {rows} row(s) invalid, so nothing was imported (all or nothing).").format(
            rejected=number(rejected), rows=number(rows)
        )
        + " "
        + how
    ).strip()


def report_rows(rejected: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """Rows of the rejected-rows CSV: row number, field, reason, never a value from the file."""
    for r in rejected:
        yield [r["row"], r["field"] or "", _QUOTED.sub("(value not shown)", r["reason"])]
