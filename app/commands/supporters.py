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
from pathlib import Path
from typing import Any

import typer

EXIT_PARTIAL = 3


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
        from app.services.people.supporters.imports import REPORT_COLUMNS, report_rows

        if self._w is None:
            self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._w = SafeWriter(self._fh)
            self._w.writerow(REPORT_COLUMNS)
        self._w.writerows(report_rows(rejected))
        self.rows += len(rejected)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _progress(run: Any, elapsed: float) -> None:
    doomed = " · checking only: nothing will be stored" if run.doomed else ""
    _say(
        f"  {run.rows:>9,} rows read · {run.rejected_count:,} rejected · "
        f"{run.geocoded_total:,} geocoded · {run.rows / max(elapsed, 1e-6):,.0f} rows/s{doomed}"
    )


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
) -> tuple[Any, Any]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.config import get_settings
    from app.db import make_engine, resolve_urls
    from app.services.people.supporters.imports import CsvStream, admin_context, import_stream

    settings = get_settings()
    engine = make_engine(resolve_urls(settings)[0], pool_size=1)  # the service's role
    stream = CsvStream(file, chunk_rows)
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            ctx = await admin_context(
                session, settings, campaign=campaign, admin_email=admin, client="command-line"
            )
            if not quiet:
                _say(
                    f"Importing {file.name} into campaign {ctx.extras['campaign_name']!r} "
                    f"for {admin.strip().lower()}, {chunk_rows:,} rows at a time "
                    f"({'valid rows only' if valid_rows_only else 'all or nothing'})..."
                )
            run = await import_stream(
                ctx,
                stream,
                mapping=mapping,
                valid_rows_only=valid_rows_only,
                on_rejected=report.write,
                on_chunk=None if quiet else _progress,
                audit_details={
                    "via": "command line",
                    "os_user": getpass.getuser(),
                    "host": socket.gethostname(),
                    "file": file.name,
                },
            )
        return ctx, run
    finally:
        stream.close()
        report.close()
        await engine.dispose()


def register(cli: typer.Typer) -> None:
    """Add the ``supporters`` group."""
    group = typer.Typer(
        help="Consented supporters: import a big member file on the server.",
        no_args_is_help=True,
    )
    cli.add_typer(group, name="supporters")

    @group.command("import")
    def import_(
        file: Path = typer.Argument(
            ..., exists=True, dir_okay=False, readable=True, help="CSV, UTF-8, `;` or `,`."
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
    ) -> None:
        """Import supporters (all or nothing unless --valid-rows-only); rejected rows to a CSV."""
        from sqlalchemy.exc import DBAPIError

        from app.errors import ImportFailed, PorteError

        report_file = _ReportFile(report or file.with_name(file.name + ".rejects.csv"))
        try:
            mapping_text = mapping.read_text(encoding="utf-8-sig") if mapping else None
        except (OSError, UnicodeDecodeError) as exc:
            _say(f"Cannot read the mapping {mapping}: {exc}. Nothing was imported.", fg="red")
            raise typer.Exit(1) from None
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
                )
            )
        except KeyboardInterrupt:
            _say("Interrupted: nothing was imported (the transaction was rolled back).", fg="red")
            raise typer.Exit(130) from None
        except ImportFailed as exc:
            msg = f"Import refused: {_problem(exc)}"
            if report_file.rows:
                msg += (
                    f" The rejected {'row is' if report_file.rows == 1 else 'rows are'} listed "
                    f"in {report_file.path} "
                    "(row = line in the file, field, reason). Fix them and run the command "
                    "again, or add --valid-rows-only to import the valid rows only."
                )
            _say(msg, fg="red")
            raise typer.Exit(1) from None
        except PorteError as exc:
            _say(f"Import refused: {_problem(exc)} Nothing was imported.", fg="red")
            raise typer.Exit(1) from None
        except OSError as exc:
            _say(
                f"Import failed: {exc}. Nothing was imported. Is the database running "
                "(`porte db status`) and PORTE_OWNER_DATABASE_URL right?",
                fg="red",
            )
            raise typer.Exit(1) from None
        except DBAPIError as exc:
            # e.g. the same person added through the API while the import ran (unique index)
            _say(
                f"Import failed: the database refused it ({type(exc.orig).__name__}: "
                f"{str(exc.orig).splitlines()[0]}). Nothing was imported; run the command again.",
                fg="red",
            )
            raise typer.Exit(1) from None
        levels = ", ".join(f"{k} {v:,}" for k, v in sorted(run.geocoded.items())) or "none"
        _say(
            f"Imported {run.loaded:,} of {run.rows:,} rows into campaign "
            f"{ctx.extras['campaign_name']!r} in {time.perf_counter() - t0:,.0f} s. "
            f"Geocoding levels: {levels}.",
            err=False,
        )
        if run.needs_review:
            _say(
                f"{run.needs_review:,} supporters are not placed at a door: review them with "
                f"GET /campaigns/{ctx.campaign_id}/supporters/review.",
                err=False,
            )
        if run.ignored_columns:
            _say(f"Columns not stored: {', '.join(run.ignored_columns)}.", err=False)
        _say(
            f"Recorded in the campaign's audit log (supporter.import, by {ctx.extras['email']}, "
            "from the command line).",
            err=False,
        )
        if run.rejected_count:
            n = run.rejected_count
            _say(
                f"{n:,} {'row was' if n == 1 else 'rows were'} rejected and not stored: see "
                f"{report_file.path} (row, field, reason).",
                fg="yellow",
            )
            raise typer.Exit(EXIT_PARTIAL)
