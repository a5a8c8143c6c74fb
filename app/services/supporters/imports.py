"""CSV import of consented supporters: column mapping, per-row report, all or nothing.

Limits: ``MAX_ROWS`` rows and ``MAX_BYTES`` bytes per upload. Bigger files are refused up front
(413) with the limit and what to do: split the file. A refused import stores nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from typing import IO, Any

from app.errors import ImportFailed, InvalidInput, PorteError
from app.services.crypto import Hasher
from app.services.supporters.core import (
    PERSONAL,
    NewSupporter,
    find_duplicates,
    geocode_items,
    hash_identifiers,
    store,
    validate,
)

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
ADDRESS_PARTS = ("housenumber", "street", "postcode", "city")
CONSENT_FIELDS = {
    "consent_given_at": "given_at",
    "consent_purposes": "purposes",
    "consent_channel": "channel",
    "consent_wording_version": "wording_version",
    "consent_notice_version": "notice_version",
    "consent_collected_by": "collected_by",
    "consent_given_by_subject": "given_by_subject",
}
FIELDS = (*PERSONAL, *ADDRESS_PARTS, "last_contact_at", *CONSENT_FIELDS)


class TooLarge(PorteError):
    """The upload is over the size or row limit (413)."""

    status = 413
    title = "File too large"


def too_large(what: str) -> TooLarge:
    """The 413 error for an upload over a limit."""
    return TooLarge(
        f"{what}. One upload holds at most {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MB. Split "
        "the file into parts under these limits (keep the header line in each part) and import "
        "them one after the other; with valid_rows_only=false each part is all or nothing.",
        extra={"max_rows": MAX_ROWS, "max_bytes": MAX_BYTES},
    )


def parse_mapping(raw: str | None, header: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(csv column -> field, defaults) from the JSON mapping; identity when no mapping is given."""
    if raw:
        try:
            m = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"is not valid JSON ({exc.msg})", field="mapping") from exc
        if not isinstance(m, dict):
            raise InvalidInput('must be {"columns": {...}, "defaults": {...}}', field="mapping")
        columns = m.get("columns", {}) or {}
        defaults = m.get("defaults", {}) or {}
        if not isinstance(columns, dict) or not isinstance(defaults, dict):
            raise InvalidInput("columns and defaults must be JSON objects", field="mapping")
    else:
        columns = {h: h for h in header if h in FIELDS}
        defaults = {}
    for col, fld in columns.items():
        if fld not in FIELDS:
            raise InvalidInput(
                f"column {col!r} is mapped to unknown field {fld!r}; fields: {', '.join(FIELDS)}",
                field="mapping.columns",
            )
        if col not in header:
            raise InvalidInput(
                f"maps column {col!r}, which is not in the file's header ({', '.join(header)})",
                field="mapping.columns",
            )
    for fld in defaults:
        if fld not in FIELDS or fld in PERSONAL:
            raise InvalidInput(
                f"unknown or personal field {fld!r} in defaults (only consent_* fields and "
                "last_contact_at may have a file-wide default)",
                field="mapping.defaults",
            )
    return columns, defaults


def _row_to_raw(row: dict[str, str], columns: dict[str, str], defaults: dict) -> dict[str, Any]:
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


def read_csv(fh: IO[bytes], size: int | None) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and (line number, row) of an uploaded CSV (``;`` or ``,``), within the limits."""
    if size is not None and size > MAX_BYTES:
        raise too_large(f"The file is {size / 2**20:.1f} MB")
    data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise too_large("The file is larger than the limit")
    lines = data.count(b"\n")
    if lines > MAX_ROWS + 1:
        raise too_large(f"The file has {lines:,} lines")
    try:
        textdata = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"is not UTF-8 (byte {exc.start}); save it as CSV UTF-8", field="file"
        ) from exc
    first = textdata.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(textdata, newline=""), delimiter=delim)
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise InvalidInput("is empty: expected a header line and rows", field="file")
    reader.fieldnames = header
    rows = [(reader.line_num, r) for r in reader]
    if len(rows) > MAX_ROWS:
        raise too_large(f"The file has {len(rows):,} rows")
    return header, rows


async def import_csv(
    ctx: Any, fh: IO[bytes], *, size: int | None, mapping: str | None, valid_rows_only: bool
) -> dict[str, Any]:
    """Import supporters from a CSV; a report of every rejected row; all or nothing by default."""
    header, rows = read_csv(fh, size)
    columns, defaults = parse_mapping(mapping, header)
    rejected: list[dict[str, Any]] = []
    good: list[tuple[int, NewSupporter]] = []
    for line, row in rows:
        try:
            good.append((line, validate(_row_to_raw(row, columns, defaults))))
        except InvalidInput as exc:
            rejected.append({"row": line, "field": exc.field, "reason": exc.detail})
    items = [s for _, s in good]
    hash_identifiers(Hasher.from_settings(ctx.settings), ctx.campaign_id, items)
    dups = await find_duplicates(ctx.session, ctx.campaign_id, items)
    keep: list[NewSupporter] = []
    for i, (line, s) in enumerate(good):
        if i in dups:
            reason = dups[i]
            if reason.startswith("same") and "item" in reason:
                other = good[int(reason.rsplit(" ", 1)[-1])][0]
                reason = reason.rsplit(" as item", 1)[0] + f" as row {other}"
            rejected.append(
                {
                    "row": line,
                    "field": "email" if "e-mail" in reason else "phone",
                    "reason": f"duplicate: {reason}",
                }
            )
        else:
            keep.append(s)
    rejected.sort(key=lambda r: r["row"])
    report: dict[str, Any] = {
        "rows": len(rows),
        "rejected_count": len(rejected),
        "rejected": rejected,
        "ignored_columns": [h for h in header if h not in columns],
        "mode": "valid_rows_only" if valid_rows_only else "all_or_nothing",
    }
    if rejected and not valid_rows_only:
        raise ImportFailed(
            f"{len(rejected)} of {len(rows)} rows are invalid, so nothing was imported "
            "(all or nothing). Fix the rows listed in 'rejected', or send valid_rows_only=true "
            "to import the valid rows only.",
            extra={"report": report},
        )
    await geocode_items(ctx.session, keep)
    await store(ctx, keep)
    levels = Counter(s.geo.level if s.geo else "none" for s in keep)
    report.update(
        loaded=len(keep),
        geocoded=dict(levels),
        needs_review=sum(
            1 for s in keep if s.address and (not s.geo or s.geo.level != "housenumber")
        ),
    )
    await ctx.audit(
        "supporter.import",
        object="supporters",
        rows=len(keep),
        details={"rejected": len(rejected), "rows": len(rows)},
    )
    return report
