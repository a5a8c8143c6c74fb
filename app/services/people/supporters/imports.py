"""CSV import of consented supporters: column mapping, per-row report, all or nothing.

Two doors, one pipeline (``SupporterImport``, an ``ImportRun``: app/importrun.py): the HTTP upload
(``import_csv``, one chunk) and the command line for big member files (``porte supporters import``,
``import_stream``: chunks of ``CHUNK_ROWS`` rows in one transaction, memory bounded by the chunk
size). Both validate, check consent, hash identifiers, find duplicates, geocode, encrypt, store and
audit the same way. Reading the file is in ``csvfile`` (limits of the upload: ``MAX_ROWS`` rows,
``MAX_BYTES`` bytes), the columns' mapping in ``mapping``, the report's CRM part and rejected-rows
CSV in ``import_report``. A refused import stores nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.errors import ImportFailed, InvalidInput
from app.i18n import _
from app.importrun import ImportRun, OnProgress
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher
from app.services.people.supporters import basis, sources
from app.services.people.supporters.core import (
    explain_duplicate,
    find_duplicates,
    geocode_items,
    hash_identifiers,
    store,
)
from app.services.people.supporters.csvfile import (
    CHUNK_ROWS,
    MAX_BYTES,
    MAX_ROWS,
    CsvInfo,
    CsvStream,
    Row,
    TooLarge,
    read_csv,
)
from app.services.people.supporters.import_report import refused, source_report
from app.services.people.supporters.mapping import (
    parse_mapping,
    parse_source_mapping,
    row_to_raw,
)
from app.services.people.supporters.validation import NewSupporter, validate

if TYPE_CHECKING:
    from app.context import CampaignContext

__all__ = ["CHUNK_ROWS", "MAX_BYTES", "MAX_ROWS", "CsvStream", "TooLarge", "import_csv"]


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


@dataclass
class SupporterImport(ImportRun):
    """One supporter import in one transaction, fed chunk by chunk (an upload is one chunk).

    With a ``reader`` (``--from nationbuilder|civicrm|digitalebox``), rows are read by the CRM's
    built-in mapping and come only under a lawful basis (basis.py): rows without one are
    *refused* (counted, listed in the report, and not an error), invalid rows are *rejected* as
    for any import. A ``dry_run`` reads, checks, finds duplicates and geocodes everything, and
    stores nothing.
    """

    ctx: CampaignContext
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
    file_name: str = ""
    on_progress: OnProgress | None = None

    def __post_init__(self) -> None:
        ImportRun.__init__(self, "supporters", self.file_name, on_progress=self.on_progress)

    @property
    def header(self) -> list[str]:
        """The file's columns (unique names)."""
        return self.info.header

    @classmethod
    async def start(
        cls,
        ctx: CampaignContext,
        info: CsvInfo,
        mapping: str | None,
        *,
        valid_rows_only: bool,
        multi_chunk: bool = False,
        source: str | None = None,
        tags: str | None = None,
        dry_run: bool = False,
        file_name: str = "",
        on_progress: OnProgress | None = None,
    ) -> SupporterImport:
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
            file_name=file_name,
            on_progress=on_progress,
        )
        if multi_chunk:
            try:
                async with ctx.session.begin_nested():
                    await ctx.session.execute(_SEEN_CREATE)
            except DBAPIError as exc:
                raise ImportFailed(
                    _(
                        "The database role of this import may not create the temporary table "
                        "it uses to find duplicates across the file; nothing was imported. "
                        "Grant it: GRANT TEMPORARY ON DATABASE <database> TO <role>."
                    )
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
            good.append((line, validate(row_to_raw(row, self.columns, self.defaults))))
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
                        "reason": _("duplicate: {reason}").format(reason=explain_duplicate(reason)),
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
            1 for s in kept if s.address and s.geo and s.geo.level != "housenumber"
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
            out.update(source_report(self))
        return out

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


async def import_csv(
    ctx: CampaignContext,
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
    run = await SupporterImport.start(
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
                how=_(
                    "Fix the rows listed in 'rejected', or send valid_rows_only=true to import "
                    "the valid rows only."
                ),
            ),
            extra={"report": report},
        )
    await run.audit()
    return report


async def import_stream(
    ctx: CampaignContext,
    stream: CsvStream,
    *,
    mapping: str | None,
    valid_rows_only: bool,
    on_rejected: Callable[[list[dict[str, Any]]], None],
    on_progress: OnProgress | None = None,
    audit_details: dict[str, Any] | None = None,
    source: str | None = None,
    tags: str | None = None,
    dry_run: bool = False,
    on_start: Callable[[SupporterImport], None] | None = None,
) -> SupporterImport:
    """Import a big file chunk by chunk in the caller's transaction (``ctx.session``).

    Rejected (and refused) rows go to ``on_rejected`` as they are found (not kept in memory);
    ``on_progress`` hears after each chunk (the run's counts are in ``event.run``).
    Raises ImportFailed, after reading the whole file, when all or nothing met invalid rows: the
    caller's transaction must then be rolled back (nothing stored). A ``dry_run`` never raises
    for invalid rows and stores nothing; the caller rolls its transaction back.
    """
    run = await SupporterImport.start(
        ctx,
        stream.info,
        mapping,
        valid_rows_only=valid_rows_only,
        multi_chunk=True,
        source=source,
        tags=tags,
        dry_run=dry_run,
        file_name=stream.path.name,
        on_progress=on_progress,
    )
    if on_start:
        on_start(run)
    for chunk in stream.chunks():
        rejected = await run.feed(chunk)
        if rejected:
            on_rejected(rejected)
        run.progress(run.rows, run.rows)
    run.progress_finished()
    if run.rows == 0:
        raise ImportFailed(_("The file has a header line but no rows: nothing to import."))
    if dry_run:
        return run
    if run.doomed:
        raise ImportFailed(
            refused(run.rejected_count, run.rows, how=""), extra={"report": run.report()}
        )
    await run.audit(**(audit_details or {}))
    return run
