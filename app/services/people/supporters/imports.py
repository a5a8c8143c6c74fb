"""CSV import of consented supporters: column mapping, per-row report, all or nothing.

Two doors, one pipeline (``ImportRun``): the HTTP upload (``import_csv``, one chunk) and the
command line for big member files (``porte supporters import``, ``import_stream``: chunks of
``CHUNK_ROWS`` rows in one transaction, memory bounded by the chunk size). Both validate, check
consent, hash identifiers, find duplicates, geocode, encrypt, store and audit the same way.

Limits of the HTTP upload: ``MAX_ROWS`` rows and ``MAX_BYTES`` bytes. Bigger files are refused up
front (413) with the limit and what to do: use the command line, or split the file. A refused
import stores nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.errors import ImportFailed, InvalidInput, NotFound, PorteError
from app.i18n import _
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher
from app.services.people.supporters import basis, sources
from app.services.people.supporters.core import (
    CONSENT_FIELDS_OF_ROW,
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
CHUNK_ROWS = 5_000
CLI_COMMAND = "porte supporters import FILE --campaign <id or name> --admin <e-mail>"
ADDRESS_PARTS = ("housenumber", "street", "postcode", "city")
CONSENT_FIELDS = CONSENT_FIELDS_OF_ROW
FIELDS = (*PERSONAL, *ADDRESS_PARTS, "last_contact_at", *CONSENT_FIELDS)
REPORT_COLUMNS = ("row", "field", "reason")

Row = tuple[int, dict[str, str]]  # (line number in the file, the row by column name)


class TooLarge(PorteError):
    """The upload is over the size or row limit (413)."""

    status = 413
    title = "File too large"


def too_large(what: str) -> TooLarge:
    """The 413 error for an upload over a limit."""
    return TooLarge(
        f"{what}. One upload holds at most {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MB. Split "
        "the file into parts under these limits (keep the header line in each part) and import "
        "them one after the other (with valid_rows_only=false each part is all or nothing); or, "
        "for a big member file, the campaign admin imports it whole on the server, streamed in "
        f"one transaction with no size limit: `{CLI_COMMAND}`.",
        extra={"max_rows": MAX_ROWS, "max_bytes": MAX_BYTES, "command": CLI_COMMAND},
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


# ---------------------------------------------------------------- reading CSV
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with a byte-order mark",
    "utf-16": "UTF-16 (with its byte-order mark)",
    "cp1252": "Windows-1252 (Latin-1)",
    "latin-1": "ISO-8859-1 (Latin-1)",
}


@dataclass
class CsvInfo:
    """How a CSV was read: its header (unique names), as written, repeated names, encoding."""

    header: list[str]
    base: list[str]  # the names as written in the file (repeated names kept)
    duplicates: dict[str, int]  # a name written more than once -> how many times
    encoding: str
    delimiter: str

    def describe(self) -> dict[str, Any]:
        """For the report."""
        names = {",": "comma", ";": "semicolon", "\t": "tab"}
        return {
            "encoding": ENCODING_LABELS.get(self.encoding, self.encoding),
            "delimiter": names.get(self.delimiter, self.delimiter),
            "duplicated_columns": self.duplicates,
        }


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _unique_header(names: list[str]) -> tuple[list[str], list[str], dict[str, int]]:
    """Unique column names: a repeated name gets ' (2)', ' (3)'...; empty names are numbered."""
    base = [n.strip() or f"(column {i + 1})" for i, n in enumerate(names)]
    if not any(n.strip() for n in names):
        raise InvalidInput("is empty: expected a header line and rows", field="file")
    seen: Counter = Counter()
    unique = []
    for n in base:
        seen[n] += 1
        unique.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return unique, base, {n: c for n, c in seen.items() if c > 1}


def _decode(data: bytes) -> tuple[str, str]:
    """Text of an upload: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    try:
        if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return data.decode("utf-16"), "utf-16"
        if data.startswith(codecs.BOM_UTF8):
            return data[3:].decode("utf-8"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            _(
                "starts with a byte-order mark but is not valid {encoding} (byte {at}); save it "
                "again as CSV UTF-8"
            ).format(encoding=exc.encoding.upper(), at=exc.start),
            field="file",
        ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def file_encoding(path: Path) -> str:
    """The encoding of a file on disk, read once in blocks (memory bounded): UTF-8 if the whole
    file is valid UTF-8, UTF-16 when it starts with its byte-order mark, else Windows-1252."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"
        bom = head.startswith(codecs.BOM_UTF8)
        fh.seek(0)
        for enc in ("utf-8", "cp1252"):
            decoder = codecs.getincrementaldecoder(enc)()
            try:
                while block := fh.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return ("utf-8-sig" if bom else "utf-8") if enc == "utf-8" else enc
            except UnicodeDecodeError:
                fh.seek(0)
    return "latin-1"


def _rows(reader: Any, header: list[str]) -> Iterator[Row]:
    for values in reader:
        if not any(v.strip() for v in values):
            continue  # a blank line
        yield reader.line_num, dict(zip(header, values, strict=False))


def read_csv(fh: IO[bytes], size: int | None) -> tuple[CsvInfo, list[Row]]:
    """Header and (line number, row) of an uploaded CSV (``;``, ``,`` or tab), within limits."""
    if size is not None and size > MAX_BYTES:
        raise too_large(f"The file is {size / 2**20:.1f} MB")
    data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise too_large("The file is larger than the limit")
    lines = data.count(b"\n")
    if lines > MAX_ROWS + 1:
        raise too_large(f"The file has {lines:,} lines")
    textdata, encoding = _decode(data)
    delimiter = _delimiter(textdata.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(textdata, newline=""), delimiter=delimiter)
    try:
        header, base, dups = _unique_header(next(reader))
        rows = list(_rows(reader, header))
    except StopIteration:
        raise InvalidInput("is empty: expected a header line and rows", field="file") from None
    except csv.Error as exc:
        raise InvalidInput(
            f"cannot be read as CSV after line {reader.line_num} ({exc})", field="file"
        ) from exc
    if len(rows) > MAX_ROWS:
        raise too_large(f"The file has {len(rows):,} rows")
    return CsvInfo(header, base, dups, encoding, delimiter), rows


class CsvStream:
    """A CSV file on disk read chunk by chunk (``;``, ``,`` or tab; UTF-8, UTF-16 or
    Windows-1252): memory bounded by a chunk."""

    def __init__(self, path: Path, chunk_rows: int = CHUNK_ROWS):
        self.path, self.chunk_rows = Path(path), chunk_rows
        encoding = file_encoding(self.path)
        self._fh = open(self.path, encoding=encoding, newline="")  # noqa: SIM115 (closed below)
        try:
            first = self._fh.readline()
            self._fh.seek(0)
            self.reader = csv.reader(self._fh, delimiter=_delimiter(first))
            try:
                header, base, dups = _unique_header(next(self.reader))
            except StopIteration:
                raise InvalidInput(
                    "is empty: expected a header line and rows", field="file"
                ) from None
            self.info = CsvInfo(header, base, dups, encoding, _delimiter(first))
            self.header = header
        except UnicodeDecodeError as exc:
            self.close()
            raise InvalidInput(
                _("is not valid {encoding} in its header line; save it again as CSV UTF-8").format(
                    encoding=exc.encoding.upper()
                ),
                field="file",
            ) from exc
        except BaseException:
            self.close()
            raise

    def chunks(self) -> Iterator[list[Row]]:
        """Lists of up to ``chunk_rows`` (line number, row), in file order."""
        chunk: list[Row] = []
        reader = self.reader
        try:
            for row in _rows(reader, self.header):
                chunk.append(row)
                if len(chunk) >= self.chunk_rows:
                    yield chunk
                    chunk = []
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                _("is not valid {encoding} after line {line}; save it again as CSV UTF-8").format(
                    encoding=exc.encoding.upper(), line=reader.line_num
                ),
                field="file",
            ) from exc
        except csv.Error as exc:
            raise InvalidInput(
                f"cannot be read as CSV after line {reader.line_num} ({exc})", field="file"
            ) from exc
        if chunk:
            yield chunk

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


# ---------------------------------------------------------------- the pipeline
# Identifiers (HMACs) of the rows this import accepted so far, with their line numbers: later
# chunks find their duplicates here, even when nothing is being stored (all or nothing after an
# invalid row). A temporary table, dropped at commit: the memory of the process stays bounded.
_SEEN_CREATE = text(
    "CREATE TEMPORARY TABLE porte_import_seen (h bytea PRIMARY KEY, line integer NOT NULL) "
    "ON COMMIT DROP"
)
_SEEN_FIND = text("SELECT h, line FROM porte_import_seen WHERE h = ANY(CAST(:h AS bytea[]))")
_SEEN_ADD = text(
    "INSERT INTO porte_import_seen (h, line) "
    "SELECT * FROM unnest(CAST(:h AS bytea[]), CAST(:l AS integer[])) ON CONFLICT DO NOTHING"
)


_RETENTION = text("SELECT supporter_retention_months FROM campaign WHERE id = :c")
_DISTINCT_TAGS = 200  # distinct dropped tag names kept for the report (memory stays bounded)


def parse_source_mapping(raw: str | None, header: list[str]) -> tuple[dict[str, str], dict]:
    """--mapping next to --from: columns -> the CRM fields of sources.CANONICAL (they win over
    the built-in mapping), defaults for consent fields only."""
    if not raw:
        return {}, {}
    try:
        m = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"is not valid JSON ({exc.msg})", field="mapping") from exc
    if not isinstance(m, dict):
        raise InvalidInput('must be {"columns": {...}, "defaults": {...}}', field="mapping")
    columns, defaults = m.get("columns", {}) or {}, m.get("defaults", {}) or {}
    if not isinstance(columns, dict) or not isinstance(defaults, dict):
        raise InvalidInput("columns and defaults must be JSON objects", field="mapping")
    for col, fld in columns.items():
        if fld not in sources.CANONICAL:
            raise InvalidInput(
                _("column {col!r} is mapped to unknown field {fld!r}; fields: {fields}").format(
                    col=col, fld=fld, fields=", ".join(sources.CANONICAL)
                ),
                field="mapping.columns",
            )
        if col not in header:
            raise InvalidInput(
                f"maps column {col!r}, which is not in the file's header ({', '.join(header)})",
                field="mapping.columns",
            )
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


@dataclass
class ImportRun:
    """One supporter import in one transaction, fed chunk by chunk (an upload is one chunk).

    With a ``reader`` (``--from nationbuilder|civicrm|digitalebox``), rows are read by the CRM's
    built-in mapping and come only under a lawful basis (basis.py): rows without one are
    *refused* (counted, listed in the report, and not an error), invalid rows are *rejected* as
    for any import. A ``dry_run`` reads, checks, finds duplicates and geocodes everything, and
    stores nothing.
    """

    ctx: Any
    info: CsvInfo
    columns: dict[str, str]
    defaults: dict[str, Any]
    valid_rows_only: bool
    hasher: Hasher
    multi_chunk: bool = False
    reader: basis.RowReader | None = None
    source_note: str | None = None
    dry_run: bool = False
    rows: int = 0
    rejected_count: int = 0
    refused_count: int = 0
    loaded: int = 0
    geocoded: Counter = field(default_factory=Counter)
    needs_review: int = 0
    refused_reasons: Counter = field(default_factory=Counter)
    refused_codes: Counter = field(default_factory=Counter)
    effects: Counter = field(default_factory=Counter)
    by_basis: Counter = field(default_factory=Counter)
    purposes: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)
    why_none: Counter = field(default_factory=Counter)
    tags_kept: Counter = field(default_factory=Counter)
    tags_dropped: Counter = field(default_factory=Counter)

    @property
    def header(self) -> list[str]:
        """The file's columns (unique names)."""
        return self.info.header

    @classmethod
    async def start(
        cls,
        ctx: Any,
        info: CsvInfo,
        mapping: str | None,
        *,
        valid_rows_only: bool,
        multi_chunk: bool = False,
        source: str | None = None,
        tags: str | None = None,
        dry_run: bool = False,
        file_name: str = "",
    ) -> ImportRun:
        """Check the mapping and the keys; a multi-chunk run also opens its duplicate index."""
        reader, note = None, None
        if source:
            system, note = sources.choose(source, info.header)
            overrides, defaults = parse_source_mapping(mapping, info.header)
            plan = sources.plan_columns(system, info.header, info.base, overrides)
            months = (await ctx.session.execute(_RETENTION, {"c": ctx.campaign_id})).scalar()
            reader = basis.RowReader(
                plan, sources.allow_list(tags), defaults, int(months or 36), file_name
            )
            columns = dict(plan.mapped)
        else:
            if tags:
                raise InvalidInput(
                    _(
                        "tags are imported only from a CRM export: give --from (nationbuilder, "
                        "civicrm, digitalebox or auto) with --tags"
                    ),
                    field="tags",
                )
            columns, defaults = parse_mapping(mapping, info.header)
        Cipher.from_settings(ctx.settings)  # refuse now, not after the first chunk
        run = cls(
            ctx,
            info,
            columns,
            defaults,
            valid_rows_only,
            Hasher.from_settings(ctx.settings),
            multi_chunk=multi_chunk,
            reader=reader,
            source_note=note,
            dry_run=dry_run,
        )
        if multi_chunk:
            try:
                async with ctx.session.begin_nested():
                    await ctx.session.execute(_SEEN_CREATE)
            except DBAPIError as exc:
                raise ImportFailed(
                    "The database role of this import may not create the temporary table it "
                    "uses to find duplicates across the file; nothing was imported. Grant it: "
                    "GRANT TEMPORARY ON DATABASE <database> TO <role>."
                ) from exc
        return run

    @property
    def ignored_columns(self) -> list[str]:
        """Header columns that are not mapped (not stored)."""
        return [h for h in self.header if h not in self.columns]

    @property
    def doomed(self) -> bool:
        """All or nothing and a row was rejected: nothing will be stored."""
        return self.rejected_count > 0 and not self.valid_rows_only

    @property
    def geocoded_total(self) -> int:
        """Supporters geocoded to a door, a street or a commune so far."""
        return sum(n for level, n in self.geocoded.items() if level != "none")

    def _read(self, line: int, row: dict[str, str], good: list, refused: list) -> None:
        if self.reader is None:
            good.append((line, validate(_row_to_raw(row, self.columns, self.defaults))))
            return
        out = self.reader.read(row)
        self.effects.update(out.effects)
        for t in out.tags_dropped:
            if t in self.tags_dropped or len(self.tags_dropped) < _DISTINCT_TAGS:
                self.tags_dropped[t] += 1
        if out.refused:
            code, fieldname, reason = out.refused
            self.refused_codes[code] += 1
            self.refused_reasons[reason] += 1
            refused.append({"row": line, "field": fieldname, "reason": reason, "refused": True})
        else:
            good.append((line, out.supporter))

    async def feed(self, chunk: list[Row]) -> list[dict[str, Any]]:
        """Check one chunk, then geocode and store its valid rows unless the import is doomed.

        Returns the chunk's rejected and refused rows ``{"row", "field", "reason"}`` in file
        order (refused ones carry ``"refused": True``).
        """
        rejected: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        good: list[tuple[int, NewSupporter]] = []
        for line, row in chunk:
            try:
                self._read(line, row, good, refused)
            except InvalidInput as exc:
                rejected.append({"row": line, "field": exc.field, "reason": exc.detail})
        items = [s for _, s in good]
        hash_identifiers(self.hasher, self.ctx.campaign_id, items)
        dups = await find_duplicates(self.ctx.session, self.ctx.campaign_id, items)
        earlier = await self._earlier_rows(items) if self.multi_chunk else {}
        keep: list[tuple[int, NewSupporter]] = []
        for i, (line, s) in enumerate(good):
            reason = self._duplicate(s, dups.get(i), earlier, good)
            if reason:
                self.duplicates["in_file" if " as row " in reason else "in_campaign"] += 1
                rejected.append(
                    {
                        "row": line,
                        "field": "email" if "e-mail" in reason else "phone",
                        "reason": f"duplicate: {reason}",
                    }
                )
            else:
                keep.append((line, s))
        self.rows += len(chunk)
        self.rejected_count += len(rejected)
        self.refused_count += len(refused)
        out = sorted(rejected + refused, key=lambda r: r["row"])
        if self.multi_chunk:
            await self._remember(keep)
        if self.doomed and not self.dry_run:
            return out  # nothing will be stored: only check the rest of the file
        kept = [s for _, s in keep]
        await geocode_items(self.ctx.session, kept)
        if not self.dry_run:
            await store(self.ctx, kept)
        self.loaded += len(kept)
        self.geocoded.update(s.geo.level if s.geo else "none" for s in kept)
        self.needs_review += sum(
            1 for s in kept if s.address and (not s.geo or s.geo.level != "housenumber")
        )
        for s in kept:
            bases = {c.basis for c in s.bases}
            self.by_basis["consent" if "consent" in bases else s.consent.basis] += 1
            self.purposes.update(s.purposes)
            self.tags_kept.update(s.tags)
            self.why_none[_why_none_of(s)] += 1
        return out

    @staticmethod
    def _duplicate(
        s: NewSupporter,
        found: str | None,
        earlier: dict[bytes, int],
        good: list[tuple[int, NewSupporter]],
    ) -> str | None:
        # an accepted earlier row of this file (stored or not) first: its line says more than
        # the id of a supporter stored in this same, not yet committed, transaction
        for h, what in ((s.email_hmac, "e-mail"), (s.phone_hmac, "phone")):
            if h is not None and h in earlier:
                return f"same {what} as row {earlier[h]}"
        if found and found.startswith("same") and " as item " in found:
            head, _sep, idx = found.rpartition(" as item ")
            return f"{head} as row {good[int(idx)][0]}"
        return found

    async def _earlier_rows(self, items: list[NewSupporter]) -> dict[bytes, int]:
        hs = [h for s in items for h in (s.email_hmac, s.phone_hmac) if h is not None]
        if not hs:
            return {}
        rows = await self.ctx.session.execute(_SEEN_FIND, {"h": hs})
        return {bytes(r.h): r.line for r in rows}

    async def _remember(self, keep: list[tuple[int, NewSupporter]]) -> None:
        hs, lines = [], []
        for line, s in keep:
            for h in (s.email_hmac, s.phone_hmac):
                if h is not None:
                    hs.append(h)
                    lines.append(line)
        if hs:
            await self.ctx.session.execute(_SEEN_ADD, {"h": hs, "l": lines})

    def report(self) -> dict[str, Any]:
        """The counts of the run (without the rejected rows)."""
        out: dict[str, Any] = {
            "rows": self.rows,
            "rejected_count": self.rejected_count,
            "ignored_columns": self.ignored_columns,
            "mode": "valid_rows_only" if self.valid_rows_only else "all_or_nothing",
            "file": self.info.describe(),
        }
        if self.dry_run:
            out.update(
                dry_run=True,
                would_load=self.loaded,
                geocoded=dict(self.geocoded),
                needs_review=self.needs_review,
            )
        elif not self.doomed:
            out.update(
                loaded=self.loaded, geocoded=dict(self.geocoded), needs_review=self.needs_review
            )
        if self.reader is not None:
            out.update(self.source_report())
        return out

    def source_report(self) -> dict[str, Any]:
        """What a CRM import did: columns, bases, refusals, opt-outs, duplicates, geocoding."""
        levels = self.geocoded
        return {
            "source": self.reader.plan.system,
            "source_note": self.source_note,
            "columns": self.reader.plan.rows(),
            "dropped_columns": [c for c in self.reader.plan.rows() if "dropped" in c],
            "by_basis": dict(self.by_basis),
            "purposes": dict(self.purposes),
            "refused_count": self.refused_count,
            "refused": dict(self.refused_codes),
            "refused_reasons": dict(self.refused_reasons),
            "opt_outs_and_left_out": {
                code: {"rows": n, "what": basis.effect_text(code)}
                for code, n in self.effects.items()
            },
            "duplicates": {
                "in_file": self.duplicates["in_file"],
                "in_campaign": self.duplicates["in_campaign"],
            },
            "geocoding": {
                "door": levels["housenumber"] + levels["interpolated"],
                "street": levels["street"],
                "commune": levels["commune"],
                "none": levels["none"],
            },
            "why_none": {k: n for k, n in self.why_none.items() if k != "placed"},
            "tags": {"kept": dict(self.tags_kept), "dropped": dict(self.tags_dropped)},
            "legal_note": _(
                "Members, former members and regular contacts come without consent under GDPR "
                "art. 9-2-d only if this campaign is run by the party that keeps the file: their "
                "data may not leave it without their consent (CNIL)."
            ),
        }

    async def audit(self, **details: Any) -> None:
        """The ``supporter.import`` audit event of a run that stored its rows."""
        extra: dict[str, Any] = {}
        if self.reader is not None:
            extra = {
                "source": self.reader.plan.system,
                "refused": self.refused_count,
                "by_basis": dict(self.by_basis),
            }
        await audit.record(
            self.ctx,
            action="supporter.import",
            object="supporters",
            rows=self.loaded,
            details={"rejected": self.rejected_count, "rows": self.rows, **extra, **details},
        )


def _why_none_of(s: NewSupporter) -> str:
    if not s.address:
        return "no_address"
    if "mapping" not in s.purposes:
        return "no_mapping_purpose"
    if s.no_geocode:
        return "outside_france"
    if s.geo is None or s.geo.level == "none":
        return "not_found"
    return "placed"


def refused(rejected: int, rows: int, *, how: str) -> str:
    """What to tell when an all-or-nothing import met invalid rows."""
    verb = "is" if rejected == 1 else "are"
    return (
        f"{rejected:,} of {rows:,} rows {verb} invalid, so nothing was imported (all or nothing). "
        f"{how}"
    ).strip()


async def import_csv(
    ctx: Any,
    fh: IO[bytes],
    *,
    size: int | None,
    mapping: str | None,
    valid_rows_only: bool,
    source: str | None = None,
    tags: str | None = None,
    dry_run: bool = False,
    file_name: str = "",
) -> dict[str, Any]:
    """Import supporters from a CSV; a report of every rejected row; all or nothing by default.

    ``source`` reads the file as a CRM export (built-in mapping, lawful basis per row);
    ``dry_run`` stores nothing and answers the report of what the import would do."""
    info, rows = read_csv(fh, size)
    run = await ImportRun.start(
        ctx,
        info,
        mapping,
        valid_rows_only=valid_rows_only,
        source=source,
        tags=tags,
        dry_run=dry_run,
        file_name=file_name,
    )
    out = await run.feed(rows)
    report = {
        **run.report(),
        "rejected": [r for r in out if not r.get("refused")],
        "refused_rows": [r for r in out if r.get("refused")],
    }
    if dry_run:
        return report
    if run.doomed:
        raise ImportFailed(
            refused(
                run.rejected_count,
                len(rows),
                how="Fix the rows listed in 'rejected', or send valid_rows_only=true to import "
                "the valid rows only.",
            ),
            extra={"report": report},
        )
    await run.audit()
    return report


async def import_stream(
    ctx: Any,
    stream: CsvStream,
    *,
    mapping: str | None,
    valid_rows_only: bool,
    on_rejected: Callable[[list[dict[str, Any]]], None],
    on_chunk: Callable[[ImportRun, float], None] | None = None,
    audit_details: dict[str, Any] | None = None,
    source: str | None = None,
    tags: str | None = None,
    dry_run: bool = False,
    on_start: Callable[[ImportRun], None] | None = None,
) -> ImportRun:
    """Import a big file chunk by chunk in the caller's transaction (``ctx.session``).

    Rejected (and refused) rows go to ``on_rejected`` as they are found (not kept in memory).
    Raises ImportFailed, after reading the whole file, when all or nothing met invalid rows: the
    caller's transaction must then be rolled back (nothing stored). A ``dry_run`` never raises
    for invalid rows and stores nothing; the caller rolls its transaction back.
    """
    run = await ImportRun.start(
        ctx,
        stream.info,
        mapping,
        valid_rows_only=valid_rows_only,
        multi_chunk=True,
        source=source,
        tags=tags,
        dry_run=dry_run,
        file_name=stream.path.name,
    )
    if on_start:
        on_start(run)
    t0 = time.perf_counter()
    for chunk in stream.chunks():
        rejected = await run.feed(chunk)
        if rejected:
            on_rejected(rejected)
        if on_chunk:
            on_chunk(run, time.perf_counter() - t0)
    if run.rows == 0:
        raise ImportFailed("The file has a header line but no rows: nothing to import.")
    if dry_run:
        return run
    if run.doomed:
        raise ImportFailed(
            refused(run.rejected_count, run.rows, how=""), extra={"report": run.report()}
        )
    await run.audit(**(audit_details or {}))
    return run


# ---------------------------------------------------------------- the command line's admin
_ACCOUNT = text("SELECT id, is_active, token_version FROM app_user WHERE email = :e")
_CAMPAIGNS = text(
    "SELECT c.id, c.name FROM campaign c JOIN membership m ON m.campaign_id = c.id "
    "AND m.user_id = :u WHERE c.id = CAST(:id AS uuid) "
    "OR (CAST(:id AS uuid) IS NULL AND c.name = :name) ORDER BY c.created_at"
)


async def admin_context(
    session: Any, settings: Any, *, campaign: str, admin_email: str, client: str
) -> Any:
    """The campaign context of an import run on the server in the name of ``admin_email``.

    The account must exist and be active, and be an admin member of the campaign (given by id
    or exact name, among the account's campaigns); the transaction's tenant is then that campaign.
    """
    from app.context import CampaignContext, Principal
    from app.security import STANDING_TEXT

    email = admin_email.strip().lower()
    account = (await session.execute(_ACCOUNT, {"e": email})).first()
    if account is None:
        raise NotFound(
            f"No account {email}. The import is made in the name of an admin of the campaign: "
            "give the e-mail they sign in with."
        )
    if not account.is_active:
        raise ImportFailed(f"The account {email} is disabled; it cannot import supporters.")
    from app.db import set_tenant

    await set_tenant(session, None, account.id)  # row-level security: this account's campaigns
    try:
        cid: uuid.UUID | None = uuid.UUID(campaign.strip())
    except ValueError:
        cid = None
    found = (
        await session.execute(_CAMPAIGNS, {"id": cid, "name": campaign.strip(), "u": account.id})
    ).all()
    if not found:
        raise NotFound(
            f"{email} is not a member of any campaign "
            + (f"with id {cid}" if cid else f"named {campaign.strip()!r} (exact name, with case)")
            + ". Check it, or give the campaign id (GET /campaigns lists the campaigns of a "
            "signed-in account)."
        )
    if len(found) > 1:
        raise ImportFailed(
            f"{len(found)} campaigns of {email} are named {campaign.strip()!r}: give the campaign "
            f"id instead ({', '.join(str(r.id) for r in found)})."
        )
    cid, name = found[0].id, found[0].name
    standing = (
        (
            await session.execute(
                STANDING_TEXT,
                {"c": cid, "u": account.id, "i": None, "v": account.token_version},
            )
        )
        .mappings()
        .first()
    )
    if standing is None or standing["role"] != "admin":
        role = standing["role"] if standing else "no"
        raise ImportFailed(
            f"{email} has the {role} role in campaign {name!r}, not admin: only an admin of the "
            "campaign, accountable for its supporter file, may import supporters. An admin can "
            "change roles (PATCH /campaigns/{cid}/members/{user_id}), or give another admin's "
            "e-mail."
        )
    ctx = CampaignContext(
        campaign_id=cid,
        role="admin",
        principal=Principal(user_id=account.id),
        session=session,
        k_threshold=standing["k_threshold"],
        election_date=standing["election_date"],
        request_id=f"cli-{uuid.uuid4()}",
        client=client,
        settings=settings,
    )
    ctx.extras.update(campaign_name=name, email=email)
    return ctx


_QUOTED = re.compile(r"""'[^']*'|"[^"]*\"""")


def report_rows(rejected: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """Rows of the rejected-rows CSV: row number, field, reason, never a value from the file."""
    for r in rejected:
        yield [r["row"], r["field"] or "", _QUOTED.sub("(value not shown)", r["reason"])]
