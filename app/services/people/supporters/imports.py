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
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher
from app.services.people.supporters.core import (
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
def _delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _header(reader: csv.DictReader) -> list[str]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise InvalidInput("is empty: expected a header line and rows", field="file")
    reader.fieldnames = header
    return header


def read_csv(fh: IO[bytes], size: int | None) -> tuple[list[str], list[Row]]:
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
    reader = csv.DictReader(
        io.StringIO(textdata, newline=""), delimiter=_delimiter(textdata.split("\n", 1)[0])
    )
    header = _header(reader)
    rows = [(reader.line_num, r) for r in reader]
    if len(rows) > MAX_ROWS:
        raise too_large(f"The file has {len(rows):,} rows")
    return header, rows


class CsvStream:
    """A CSV file on disk read chunk by chunk (``;`` or ``,``, UTF-8): memory bounded by a chunk."""

    def __init__(self, path: Path, chunk_rows: int = CHUNK_ROWS):
        self.path, self.chunk_rows = Path(path), chunk_rows
        self._fh = open(self.path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
        try:
            first = self._fh.readline()
            self._fh.seek(0)
            self.reader = csv.DictReader(self._fh, delimiter=_delimiter(first))
            self.header = _header(self.reader)
        except UnicodeDecodeError as exc:
            self.close()
            raise InvalidInput(
                "is not UTF-8 in its header line; save it as CSV UTF-8", field="file"
            ) from exc
        except BaseException:
            self.close()
            raise

    def chunks(self) -> Iterator[list[Row]]:
        """Lists of up to ``chunk_rows`` (line number, row), in file order."""
        chunk: list[Row] = []
        reader = self.reader
        try:
            for row in reader:
                chunk.append((reader.line_num, row))
                if len(chunk) >= self.chunk_rows:
                    yield chunk
                    chunk = []
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"is not UTF-8 after line {reader.line_num}; save it as CSV UTF-8", field="file"
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


@dataclass
class ImportRun:
    """One supporter import in one transaction, fed chunk by chunk (an upload is one chunk)."""

    ctx: Any
    header: list[str]
    columns: dict[str, str]
    defaults: dict[str, Any]
    valid_rows_only: bool
    hasher: Hasher
    multi_chunk: bool = False
    rows: int = 0
    rejected_count: int = 0
    loaded: int = 0
    geocoded: Counter = field(default_factory=Counter)
    needs_review: int = 0

    @classmethod
    async def start(
        cls,
        ctx: Any,
        header: list[str],
        mapping: str | None,
        *,
        valid_rows_only: bool,
        multi_chunk: bool = False,
    ) -> ImportRun:
        """Check the mapping and the keys; a multi-chunk run also opens its duplicate index."""
        columns, defaults = parse_mapping(mapping, header)
        Cipher.from_settings(ctx.settings)  # refuse now, not after the first chunk
        run = cls(
            ctx,
            header,
            columns,
            defaults,
            valid_rows_only,
            Hasher.from_settings(ctx.settings),
            multi_chunk=multi_chunk,
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

    async def feed(self, chunk: list[Row]) -> list[dict[str, Any]]:
        """Check one chunk, then geocode and store its valid rows unless the import is doomed.

        Returns the chunk's rejected rows ``{"row", "field", "reason"}`` in file order.
        """
        rejected: list[dict[str, Any]] = []
        good: list[tuple[int, NewSupporter]] = []
        for line, row in chunk:
            try:
                good.append((line, validate(_row_to_raw(row, self.columns, self.defaults))))
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
                rejected.append(
                    {
                        "row": line,
                        "field": "email" if "e-mail" in reason else "phone",
                        "reason": f"duplicate: {reason}",
                    }
                )
            else:
                keep.append((line, s))
        rejected.sort(key=lambda r: r["row"])
        self.rows += len(chunk)
        self.rejected_count += len(rejected)
        if self.multi_chunk:
            await self._remember(keep)
        if self.doomed:
            return rejected  # nothing will be stored: only check the rest of the file
        kept = [s for _, s in keep]
        await geocode_items(self.ctx.session, kept)
        await store(self.ctx, kept)
        self.loaded += len(kept)
        self.geocoded.update(s.geo.level if s.geo else "none" for s in kept)
        self.needs_review += sum(
            1 for s in kept if s.address and (not s.geo or s.geo.level != "housenumber")
        )
        return rejected

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
            head, _, idx = found.rpartition(" as item ")
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
        }
        if not self.doomed:
            out.update(
                loaded=self.loaded, geocoded=dict(self.geocoded), needs_review=self.needs_review
            )
        return out

    async def audit(self, **details: Any) -> None:
        """The ``supporter.import`` audit event of a run that stored its rows."""
        await audit.record(
            self.ctx,
            action="supporter.import",
            object="supporters",
            rows=self.loaded,
            details={"rejected": self.rejected_count, "rows": self.rows, **details},
        )


def refused(rejected: int, rows: int, *, how: str) -> str:
    """What to tell when an all-or-nothing import met invalid rows."""
    verb = "is" if rejected == 1 else "are"
    return (
        f"{rejected:,} of {rows:,} rows {verb} invalid, so nothing was imported (all or nothing). "
        f"{how}"
    ).strip()


async def import_csv(
    ctx: Any, fh: IO[bytes], *, size: int | None, mapping: str | None, valid_rows_only: bool
) -> dict[str, Any]:
    """Import supporters from a CSV; a report of every rejected row; all or nothing by default."""
    header, rows = read_csv(fh, size)
    run = await ImportRun.start(ctx, header, mapping, valid_rows_only=valid_rows_only)
    rejected = await run.feed(rows)
    report = {**run.report(), "rejected": rejected}
    if run.doomed:
        raise ImportFailed(
            refused(
                len(rejected),
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
) -> ImportRun:
    """Import a big file chunk by chunk in the caller's transaction (``ctx.session``).

    Rejected rows go to ``on_rejected`` as they are found (not kept in memory). Raises
    ImportFailed, after reading the whole file, when all or nothing met invalid rows: the caller's
    transaction must then be rolled back (nothing stored).
    """
    run = await ImportRun.start(
        ctx, stream.header, mapping, valid_rows_only=valid_rows_only, multi_chunk=True
    )
    t0 = time.perf_counter()
    for chunk in stream.chunks():
        rejected = await run.feed(chunk)
        if rejected:
            on_rejected(rejected)
        if on_chunk:
            on_chunk(run, time.perf_counter() - t0)
    if run.rows == 0:
        raise ImportFailed("The file has a header line but no rows: nothing to import.")
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
