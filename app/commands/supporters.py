"""`porte supporters import FILE`: a big consented supporter file, imported on the server.

For member files above the HTTP upload's limits (50,000 rows, 20 MB). The import is made in the
name of an admin of the campaign (``--admin``, checked like the API checks a caller), in ONE
transaction: all or nothing unless ``--valid-rows-only``. The file is streamed in chunks, so
memory stays bounded whatever its size.

It connects as the service's role, like the API: row-level security applies, the tenant is the
campaign, and the account's standing is read with ``porte_enter`` as for a request.

Exit codes: 0 every row stored; 3 ``--valid-rows-only`` stored the valid rows and rejected some;
1 nothing stored (invalid rows, refused admin or campaign, unreadable file or mapping);
2 wrong command line; 130 interrupted (nothing stored).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from app.commands import command_group, failed

EXIT_PARTIAL = 3


class Source(StrEnum):
    """The CRMs whose exports ``--from`` reads (``auto``: recognised from the header)."""

    nationbuilder = "nationbuilder"
    civicrm = "civicrm"
    digitalebox = "digitalebox"
    auto = "auto"


def _say(message: str, *, err: bool = True, fg: str | None = None) -> None:
    typer.secho(message, err=err, fg=fg)


def _problem(exc: Any) -> str:
    """A PorteError as a sentence (InvalidInput details start after the field's name)."""
    field, detail = exc.field, exc.detail.rstrip()
    if not detail.endswith("."):
        detail += "."
    if not field:
        return detail
    if detail.split(" ", 1)[0] in ("is", "has", "maps", "cannot"):
        return f"{field} {detail}"
    return f"{field}: {detail}"


class _ReportFile:
    """The rejected-rows CSV, opened at the first rejected row (row, field, reason only)."""

    def __init__(self, path: Path):
        self.path, self._fh, self._w = path, None, None
        self.rows = 0

    def write(self, rejected: list[dict[str, Any]]) -> None:
        from app.csvsafe import SafeWriter
        from app.services.people.supporters.import_report import REPORT_COLUMNS, report_rows

        if self._w is None:
            self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._w = SafeWriter(self._fh)
            self._w.writerow(REPORT_COLUMNS)
        self._w.writerows(report_rows(rejected))
        self.rows += len(rejected)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _progress(event: Any) -> None:
    from app.i18n import _, number

    if event.finished:
        return
    run, elapsed = event.run, event.run.seconds
    line = _(
        "  {rows} rows read · {rejected} rejected · {geocoded} geocoded · {rate} rows/s"
    ).format(
        rows=number(run.rows).rjust(9),
        rejected=number(run.rejected_count),
        geocoded=number(run.geocoded_total),
        rate=number(run.rows / max(elapsed, 1e-6)),
    )
    if run.doomed:
        line += _(" · checking only: nothing will be stored")
    _say(line)


async def _import(
    file: Path,
    *,
    campaign: str,
    admin: str,
    mapping: str | None,
    valid_rows_only: bool,
    report: _ReportFile,
    chunk_rows: int,
    quiet: bool,
    source: str | None = None,
    tags: str | None = None,
    dry_run: bool = False,
) -> tuple[Any, Any]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.config import get_settings
    from app.db import make_engine, resolve_urls
    from app.i18n import _
    from app.services.people.supporters.admin import admin_context
    from app.services.people.supporters.csvfile import CsvStream
    from app.services.people.supporters.imports import import_stream

    settings = get_settings()
    engine = make_engine(resolve_urls(settings)[0], pool_size=1)  # the service's role
    stream = CsvStream(file, chunk_rows)
    try:
        async with async_sessionmaker(engine)() as session:
            tx = await session.begin()
            try:
                ctx = await admin_context(
                    session, settings, campaign=campaign, admin_email=admin, client="command-line"
                )
                if not quiet:
                    what = _("Checking (dry run, nothing is stored)") if dry_run else _("Importing")
                    _say(
                        _(
                            "{what} {file} into campaign {campaign!r} for {admin}, {n:,} rows at "
                            "a time ({mode})..."
                        ).format(
                            what=what,
                            file=file.name,
                            campaign=ctx.extras["campaign_name"],
                            admin=admin.strip().lower(),
                            n=chunk_rows,
                            mode=_("valid rows only") if valid_rows_only else _("all or nothing"),
                        )
                    )
                run = await import_stream(
                    ctx,
                    stream,
                    mapping=mapping,
                    valid_rows_only=valid_rows_only,
                    on_rejected=report.write,
                    on_progress=None if quiet else _progress,
                    on_start=None if quiet else _started,
                    audit_details={
                        "via": "command line",
                        "os_user": getpass.getuser(),
                        "host": socket.gethostname(),
                        "file": file.name,
                    },
                    source=source,
                    tags=tags,
                    dry_run=dry_run,
                )
            except BaseException:
                await tx.rollback()
                raise
            if dry_run:
                await tx.rollback()  # the dry run stores nothing (not even its duplicate index)
            else:
                await tx.commit()
        return ctx, run
    finally:
        stream.close()
        report.close()
        await engine.dispose()


def _started(run: Any) -> None:
    if run.source_note:
        _say(run.source_note[:1].upper() + run.source_note[1:] + ".")


def _print_source_report(run: Any, *, dry_run: bool) -> None:
    """The columns, bases, refusals, opt-outs, duplicates, geocoding and tags of a CRM import."""
    from app.i18n import _

    rep = run.report()
    f = rep["file"]
    line = _("File: {encoding}, {delimiter}-separated.").format(
        encoding=f["encoding"], delimiter=f["delimiter"]
    )
    if f["duplicated_columns"]:
        line += " " + _(
            "Repeated column names: {names} (the first non-empty value is used)."
        ).format(names=", ".join(f"{n} ×{c}" for n, c in f["duplicated_columns"].items()))
    _say(line, err=False)
    _say(_("Columns:"), err=False)
    width = min(max(len(c["column"]) for c in rep["columns"]), 34)
    for c in rep["columns"]:
        if "maps_to" in c:
            _say(f"  {c['column']:<{width}}  -> {c['use']}", err=False)
        else:
            _say(
                f"  {c['column']:<{width}}  " + _("dropped: {why}").format(why=c["why"]),
                err=False,
            )
    verb = _("would be imported") if dry_run else _("imported")
    loaded = rep.get("would_load", rep.get("loaded", 0))
    _say(
        _(
            "Rows: {rows:,} read, {loaded:,} {verb}, {refused:,} refused, {rejected:,} rejected."
        ).format(
            rows=rep["rows"],
            loaded=loaded,
            verb=verb,
            refused=rep["refused_count"],
            rejected=rep["rejected_count"],
        ),
        err=False,
    )

    def counts(d: dict) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items())) or _("none")

    _say(_("By legal basis: {counts}.").format(counts=counts(rep["by_basis"])), err=False)
    _say(_("By purpose: {counts}.").format(counts=counts(rep["purposes"])), err=False)
    if rep["refused_reasons"]:
        _say(_("Refused rows, by reason:"), err=False)
        for reason, n in sorted(rep["refused_reasons"].items(), key=lambda x: -x[1]):
            _say(f"  {n:>7,}  {reason}", err=False)
    if rep["opt_outs_and_left_out"]:
        _say(_("Opt-outs honoured and values left out:"), err=False)
        for item in rep["opt_outs_and_left_out"].values():
            _say(f"  {item['rows']:>7,}  {item['what']}", err=False)
    d = rep["duplicates"]
    _say(
        _(
            "Duplicates (keyed hash of e-mail and phone): {f:,} in the file, {c:,} already in the "
            "campaign."
        ).format(f=d["in_file"], c=d["in_campaign"]),
        err=False,
    )
    g = rep["geocoding"]
    line = _(
        "Geocoding: door {door:,}, street {street:,}, commune {commune:,}, none {none:,}"
    ).format(**g)
    if rep["why_none"]:
        line += " (" + _("why none: {why}").format(why=counts(rep["why_none"])) + ")"
    _say(line + ".", err=False)
    t = rep["tags"]
    if t["kept"] or t["dropped"]:
        _say(
            _("Tags kept: {kept}. Not in --tags, dropped: {dropped}.").format(
                kept=counts(t["kept"]), dropped=counts(t["dropped"])
            ),
            err=False,
        )
    _say(rep["legal_note"], err=False)


def _read_mapping(mapping: Path | None) -> str | None:
    """The text of ``--mapping`` (None without one); exit 1 when it cannot be read."""
    from app.i18n import _

    try:
        return mapping.read_text(encoding="utf-8-sig") if mapping else None
    except (OSError, UnicodeDecodeError) as exc:
        raise failed(
            _("Cannot read the mapping {path}: {error}. Nothing was imported.").format(
                path=mapping, error=exc
            )
        ) from None


def _refused(exc: Exception, report_file: _ReportFile) -> typer.Exit:
    """Say why nothing was imported (a refused file or row, an unreachable or refusing
    database) and give the exit (1) to raise; any other error is raised again."""
    from sqlalchemy.exc import DBAPIError

    from app.dbfaults import disk_full_advice, is_disk_full
    from app.errors import ImportFailed, PorteError
    from app.i18n import _

    if isinstance(exc, ImportFailed):
        msg = _("Import refused: {problem}").format(problem=_problem(exc))
        if report_file.rows:
            msg += " " + _(
                "The rejected row(s) are listed in {path} (row = line in the file, field, "
                "reason). Fix them and run the command again, or add --valid-rows-only to "
                "import the valid rows only."
            ).format(path=report_file.path)
        return failed(msg)
    if isinstance(exc, PorteError):
        return failed(
            _("Import refused: {problem} Nothing was imported.").format(problem=_problem(exc))
        )
    if isinstance(exc, OSError):
        return failed(
            _(
                "Import failed: {error}. Nothing was imported. Is the database running "
                "(`porte db status`) and PORTE_OWNER_DATABASE_URL right?"
            ).format(error=exc)
        )
    if not isinstance(exc, DBAPIError):
        raise exc
    if is_disk_full(exc):
        first = str(exc.orig).splitlines()[0]
        return failed(_("Import failed: {error}.").format(error=first) + " " + disk_full_advice())
    # e.g. the same person added through the API while the import ran (unique index)
    return failed(
        _(
            "Import failed: the database refused it ({error}). Nothing was imported; "
            "run the command again."
        ).format(error=f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}")
    )


def _print_dry_run(run: Any, report_file: _ReportFile) -> None:
    """What a dry run would have stored; exit 1 when an all-or-nothing import would store
    nothing."""
    from app.i18n import _

    if run.reader is None:
        _say(
            _("{ok:,} of {n:,} rows would be imported; {bad:,} rejected.").format(
                ok=run.loaded, n=run.rows, bad=run.rejected_count
            ),
            err=False,
        )
    if report_file.rows:
        _say(
            _("The rows that would not come are listed in {path} (row, field, reason).").format(
                path=report_file.path
            ),
            err=False,
        )
    _say(_("Dry run: nothing was stored."), err=False)
    if run.doomed:
        _say(
            _(
                "As asked (all or nothing), this import would store nothing: fix the "
                "rejected rows or add --valid-rows-only."
            ),
            fg="yellow",
        )
        raise typer.Exit(1)


def _print_imported(ctx: Any, run: Any, report_file: _ReportFile, *, seconds: float) -> None:
    """What was stored, what to review, where the rejected rows are; exit ``EXIT_PARTIAL``
    when some rows were rejected."""
    from app.i18n import _, number

    levels = ", ".join(f"{k} {number(v)}" for k, v in sorted(run.geocoded.items())) or _("none")
    _say(
        _(
            "Imported {loaded} of {rows} rows into campaign {name!r} in {seconds} s. "
            "Geocoding levels: {levels}."
        ).format(
            loaded=number(run.loaded),
            rows=number(run.rows),
            name=ctx.extras["campaign_name"],
            seconds=number(seconds),
            levels=levels,
        ),
        err=False,
    )
    if run.needs_review:
        _say(
            _(
                "{n} supporter(s) are not placed at a door: review them with "
                "GET /campaigns/{cid}/supporters/review."
            ).format(n=number(run.needs_review), cid=ctx.campaign_id),
            err=False,
        )
    if run.ignored_columns and run.reader is None:
        _say(
            _("Columns not stored: {columns}.").format(columns=", ".join(run.ignored_columns)),
            err=False,
        )
    if run.refused_count:
        _say(
            _(
                "{n:,} rows were refused (no lawful basis, or opted out) and not stored: "
                "see {path} (row, field, reason)."
            ).format(n=run.refused_count, path=report_file.path),
            err=False,
        )
    _say(
        _(
            "Recorded in the campaign's audit log (supporter.import, by {email}, from the "
            "command line)."
        ).format(email=ctx.extras["email"]),
        err=False,
    )
    if run.rejected_count:
        n = run.rejected_count
        _say(
            _("{n} row(s) rejected and not stored: see {path} (row, field, reason).").format(
                n=number(n), path=report_file.path
            ),
            fg="yellow",
        )
        raise typer.Exit(EXIT_PARTIAL)


def register(cli: typer.Typer) -> None:
    """Add the ``supporters`` group (long: the import command's many options)."""
    group = command_group(
        cli, "supporters", "Consented supporters: import a big member file on the server."
    )

    @group.command("import")
    def import_(
        file: Path = typer.Argument(
            ...,
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV (UTF-8, UTF-16 or Latin-1; `;`, `,` or tab).",
        ),
        campaign: str = typer.Option(..., "--campaign", help="Campaign id, or its exact name."),
        admin: str = typer.Option(
            ..., "--admin", help="E-mail of the campaign admin in whose name the import is made."
        ),
        mapping: Path | None = typer.Option(
            None,
            "--mapping",
            exists=True,
            dir_okay=False,
            help='JSON {"columns": {CSV column: field}, "defaults": {consent field: value}}.',
        ),
        valid_rows_only: bool = typer.Option(
            False, "--valid-rows-only", help="Store the valid rows even if some are rejected."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Where to write the rejected rows (default: FILE.rejects.csv)."
        ),
        chunk_rows: int = typer.Option(
            5_000, "--chunk-rows", min=1, help="Rows read, checked and stored at a time."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
        source: Source | None = typer.Option(
            None,
            "--from",
            help="Read FILE as this CRM's people export: nationbuilder, civicrm, digitalebox or "
            "auto (built-in mapping; each row under a lawful basis or refused).",
        ),
        tags: str | None = typer.Option(
            None, "--tags", help="With --from: the tags to keep, comma-separated (others dropped)."
        ),
        dry_run: bool = typer.Option(
            False,
            "--dry-run",
            help="Read and check the whole file, report what would happen, store nothing.",
        ),
    ) -> None:
        """Import supporters (all or nothing unless --valid-rows-only); rejected rows to a CSV."""
        from app.i18n import _

        report_file = _ReportFile(report or file.with_name(file.name + ".rejects.csv"))
        mapping_text = _read_mapping(mapping)
        t0 = time.perf_counter()
        try:
            ctx, run = asyncio.run(
                _import(
                    file,
                    campaign=campaign,
                    admin=admin,
                    mapping=mapping_text,
                    valid_rows_only=valid_rows_only,
                    report=report_file,
                    chunk_rows=chunk_rows,
                    quiet=quiet,
                    source=source.value if source else None,
                    tags=tags,
                    dry_run=dry_run,
                )
            )
        except KeyboardInterrupt:
            raise failed(
                _("Interrupted: nothing was imported (the transaction was rolled back)."), 130
            ) from None
        except Exception as exc:
            raise _refused(exc, report_file) from None
        if run.reader is not None:
            _print_source_report(run, dry_run=dry_run)
        if dry_run:
            _print_dry_run(run, report_file)
        else:
            _print_imported(ctx, run, report_file, seconds=time.perf_counter() - t0)
