"""Which column of a supporter CSV is which field: the ``mapping`` of a plain import, the
overrides of a CRM import (``--from``), and a row turned into the raw values ``validation.validate``
checks.
"""

from __future__ import annotations

import json
from typing import Any

from app.errors import InvalidInput
from app.i18n import _
from app.services.people.supporters import sources
from app.services.people.supporters.validation import CONSENT_FIELDS_OF_ROW, PERSONAL

ADDRESS_PARTS = ("housenumber", "street", "postcode", "city")
CONSENT_FIELDS = CONSENT_FIELDS_OF_ROW
FIELDS = (*PERSONAL, *ADDRESS_PARTS, "last_contact_at", *CONSENT_FIELDS)


def _load(raw: str) -> tuple[dict, dict]:
    """The ``columns`` and ``defaults`` objects of a JSON ``--mapping`` / ``mapping`` value."""
    try:
        m = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            _("is not valid JSON ({error})").format(error=exc.msg), field="mapping"
        ) from exc
    if not isinstance(m, dict):
        raise InvalidInput(
            _('must be {{"columns": {{...}}, "defaults": {{...}}}}').format(), field="mapping"
        )
    columns, defaults = m.get("columns", {}) or {}, m.get("defaults", {}) or {}
    if not isinstance(columns, dict) or not isinstance(defaults, dict):
        raise InvalidInput(_("columns and defaults must be JSON objects"), field="mapping")
    return columns, defaults


def _check_columns(columns: dict[str, str], header: list[str], fields: tuple[str, ...]) -> None:
    """Each mapped column is in the file's header and names one of ``fields``."""
    for col, fld in columns.items():
        if fld not in fields:
            raise InvalidInput(
                _("column {col!r} is mapped to unknown field {fld!r}; fields: {fields}").format(
                    col=col, fld=fld, fields=", ".join(fields)
                ),
                field="mapping.columns",
            )
        if col not in header:
            raise InvalidInput(
                _("maps column {col!r}, which is not in the file's header ({header})").format(
                    col=col, header=", ".join(header)
                ),
                field="mapping.columns",
            )


def parse_mapping(raw: str | None, header: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(csv column -> field, defaults) from the JSON mapping; identity when no mapping is given."""
    if raw:
        columns, defaults = _load(raw)
    else:
        columns = {h: h for h in header if h in FIELDS}
        defaults = {}
    _check_columns(columns, header, FIELDS)
    for fld in defaults:
        if fld not in FIELDS or fld in PERSONAL:
            raise InvalidInput(
                _(
                    "unknown or personal field {fld!r} in defaults (only consent_* fields and "
                    "last_contact_at may have a file-wide default)"
                ).format(fld=fld),
                field="mapping.defaults",
            )
    return columns, defaults


def row_to_raw(row: dict[str, str], columns: dict[str, str], defaults: dict) -> dict[str, Any]:
    vals: dict[str, Any] = dict(defaults)
    for col, fld in columns.items():
        v = (row.get(col) or "").strip()
        if v:
            vals[fld] = v
    if not vals.get("address") and any(vals.get(p) for p in ADDRESS_PARTS):
        num_street = " ".join(str(vals[p]) for p in ("housenumber", "street") if vals.get(p))
        pc_city = " ".join(str(vals[p]) for p in ("postcode", "city") if vals.get(p))
        vals["address"] = ", ".join(x for x in (num_street, pc_city) if x)
    consent = {v: vals[k] for k, v in CONSENT_FIELDS.items() if vals.get(k) not in (None, "")}
    raw = {k: vals.get(k) for k in PERSONAL}
    raw["last_contact_at"] = vals.get("last_contact_at")
    # no date of consent for this row: no consent at all (file-wide defaults do not make one)
    raw["consent"] = consent if consent.get("given_at") else None
    return raw


def parse_source_mapping(raw: str | None, header: list[str]) -> tuple[dict[str, str], dict]:
    """--mapping next to --from: columns -> the CRM fields of sources.CANONICAL (they win over
    the built-in mapping), defaults for consent fields only."""
    if not raw:
        return {}, {}
    columns, defaults = _load(raw)
    _check_columns(columns, header, sources.CANONICAL)
    for fld in defaults:
        if fld not in sources.CONSENT:
            raise InvalidInput(
                _(
                    "field {fld!r} may not have a file-wide default: only the consent fields "
                    "({fields}) may"
                ).format(fld=fld, fields=", ".join(sources.CONSENT)),
                field="mapping.defaults",
            )
    return columns, defaults
