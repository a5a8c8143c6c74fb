"""`porte import tiles | addresses | districts | constituencies | results | sample`: public data.

Each import is one transaction (all or nothing), streamed with COPY, shows a progress bar and ends
with a summary; skipped/rejected rows are listed in ``<FILE>.rejects.csv`` next to the input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import typer

from app.commands import command_group, failed
from app.commands.progress import progress_bar
from app.errors import ImportFailed
from app.i18n import _
from app.importrun import lost_connection

FileArg = typer.Argument(..., help="The file to import.", show_default=False)
MaxRejects = typer.Option(
    0, "--max-rejects", min=0, help="Load the good rows even if up to N rows are rejected."
)
Report = typer.Option(
    None, "--report", help="Where to write rejected rows (default: FILE.rejects.csv)."
)
Quiet = typer.Option(False, "--quiet", "-q", help="No progress bar (the summary is still shown).")
AsJson = typer.Option(False, "--json", help="Print the summary as JSON.")


def _owner_url() -> str:
    from app.config import get_settings
    from app.dburl import resolve_urls

    return resolve_urls(get_settings())[1]


def _run(coro, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    try:
        report = asyncio.run(coro)
    except ImportFailed as exc:
        err.print(
            _("[bold red]Import refused:[/] {detail}").format(detail=escape(exc.detail)),
            highlight=False,
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print(_("[bold red]Interrupted:[/] nothing was imported."))
        raise typer.Exit(130) from None
    except OSError as exc:
        err.print(
            _("[bold red]Import failed:[/] {error}. Nothing was imported.").format(
                error=escape(str(exc))
            ),
            highlight=False,
        )
        raise typer.Exit(1) from None
    except Exception as exc:
        if not lost_connection(exc):
            raise
        err.print(
            _(
                "[bold red]Import failed:[/] the database connection was lost ({error}). Nothing "
                "was imported; run the same command again once the database is back."
            ).format(error=exc),
            highlight=False,
        )
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        Console().print(report.summary(), highlight=False)
    # Tiles, doors or districts changed: rebuild the allocation of the blocks they touch now, in
    # resumable steps, rather than in the first ranking request.
    from app.commands.allocation import run_refresh

    if not as_json:
        err.print(_("Refreshing the tile-to-district allocation used by the ranking..."))
    run_refresh(quiet=as_json)
    if not as_json:
        err.print(_("Refreshing district shapes for the maps and the campaigns' territories..."))
    asyncio.run(refresh_maps_and_territories(_owner_url()))


async def refresh_maps_and_territories(owner_url: str) -> dict[str, int]:
    """After an import (as the owner): simplified district shapes of the districts that changed,
    each district's constituency, every campaign's district list (territory)."""
    from sqlalchemy import text

    from app.db import make_engine
    from app.services.access import territory

    engine = make_engine(owner_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            shapes = (await conn.execute(text("SELECT porte_refresh_district_shapes()"))).scalar()
            campaigns = await territory.refresh_all(conn)
    finally:
        await engine.dispose()
    return {"districts_reshaped": shapes or 0, "campaigns_refreshed": campaigns}


class _Common(NamedTuple):
    """The options every import takes."""

    max_rejects: int
    report: Path | None
    quiet: bool
    as_json: bool


def _import(importer: Callable[..., Any], file: Path, common: _Common, **options: Any) -> None:
    """Run ``importer`` on ``file`` as the schema owner, with a progress bar unless ``--quiet``,
    then show its summary (``_run``)."""
    coro = importer(
        _owner_url(),
        file,
        max_rejects=common.max_rejects,
        report_path=common.report,
        on_progress=progress_bar(common.quiet),
        **options,
    )
    _run(coro, common.as_json)


def register(cli: typer.Typer) -> None:
    """Add the ``import`` group (long: each format's options are declared here)."""
    imp = command_group(
        cli, "import", "Import public reference data (one transaction each; re-importing replaces)."
    )

    @imp.command()
    def tiles(
        file: Path = FileArg,
        layer: str = typer.Option(None, help="GeoPackage layer (default: the first)."),
        delimiter: str = typer.Option(None, help="Force the CSV delimiter."),
        encoding: str = typer.Option("utf-8-sig", help="Text encoding of a CSV."),
        max_rejects: int = MaxRejects,
        report: Path = Report,
        quiet: bool = Quiet,
        as_json: bool = AsJson,
    ) -> None:
        """INSEE Filosofi 200 m tiles: CSV (.csv/.csv.gz) or GeoPackage, any vintage."""
        from app.services.reference.imports.tiles import import_tiles

        common = _Common(max_rejects, report, quiet, as_json)
        _import(import_tiles, file, common, layer=layer, delimiter=delimiter, encoding=encoding)

    @imp.command()
    def addresses(
        file: Path = FileArg,
        commune: str = typer.Option(
            None, "--commune", help="Only these INSEE commune codes, comma-separated (92002,...)."
        ),
        delimiter: str = typer.Option(None, help="Force the delimiter (BAN and BAL use ';')."),
        encoding: str = typer.Option("utf-8-sig", help="Text encoding."),
        max_rejects: int = MaxRejects,
        report: Path = Report,
        quiet: bool = Quiet,
        as_json: bool = AsJson,
    ) -> None:
        """Doors from a BAN CSV (.csv or .csv.gz) or a BAL CSV (Base Adresse Locale)."""
        from app.services.reference.imports.addresses import import_addresses

        common = _Common(max_rejects, report, quiet, as_json)
        _import(
            import_addresses, file, common, communes=commune, delimiter=delimiter, encoding=encoding
        )

    @imp.command()
    def districts(
        file: Path = FileArg,
        layer: str = typer.Option(None, help="Layer (GeoPackage)."),
        code_field: str = typer.Option(None, help="Field holding the district code."),
        name_field: str = typer.Option(None, help="Field holding the district name."),
        kind: str = typer.Option("bureau_de_vote", help="bureau_de_vote or iris."),
        crs: str = typer.Option(None, help="Override the file's CRS (e.g. EPSG:2154)."),
        max_rejects: int = MaxRejects,
        report: Path = Report,
        quiet: bool = Quiet,
        as_json: bool = AsJson,
    ) -> None:
        """Polling-station (or IRIS) polygons from GeoJSON or GeoPackage, any CRS."""
        from app.services.reference.imports.districts import import_districts

        common = _Common(max_rejects, report, quiet, as_json)
        _import(
            import_districts,
            file,
            common,
            layer=layer,
            code_field=code_field,
            name_field=name_field,
            kind=kind,
            crs=crs,
        )

    @imp.command()
    def constituencies(
        file: Path = FileArg,
        layer: str = typer.Option(None, help="Layer (GeoPackage)."),
        code_field: str = typer.Option(None, help="Field holding the constituency code."),
        delimiter: str = typer.Option(None, help="Force the CSV delimiter."),
        encoding: str = typer.Option("utf-8-sig", help="Text encoding of a CSV."),
        crs: str = typer.Option(None, help="Override the file's CRS (e.g. EPSG:2154)."),
        max_rejects: int = MaxRejects,
        report: Path = Report,
        quiet: bool = Quiet,
        as_json: bool = AsJson,
    ) -> None:
        """Legislative constituencies: contours, or polling stations or communes with their
        constituency (data.gouv.fr / Ministry of the Interior files)."""
        from app.services.reference.imports.constituencies import import_constituencies

        common = _Common(max_rejects, report, quiet, as_json)
        _import(
            import_constituencies,
            file,
            common,
            layer=layer,
            code_field=code_field,
            delimiter=delimiter,
            encoding=encoding,
            crs=crs,
        )

    @imp.command()
    def results(
        file: Path = FileArg,
        election: str = typer.Option(
            ..., "--election", help="Name of the election, e.g. legislatives_2024_t1."
        ),
        delimiter: str = typer.Option(None, help="Force the CSV delimiter."),
        encoding: str = typer.Option("utf-8-sig", help="Text encoding (e.g. cp1252)."),
        max_rejects: int = MaxRejects,
        report: Path = Report,
        quiet: bool = Quiet,
        as_json: bool = AsJson,
    ) -> None:
        """Ministry of the Interior results per polling station (wide or long format)."""
        from app.services.reference.imports.results import import_results

        common = _Common(max_rejects, report, quiet, as_json)
        _import(
            import_results, file, common, election=election, delimiter=delimiter, encoding=encoding
        )

    @imp.command()
    def sample(quiet: bool = Quiet) -> None:
        """The bundled sample: 92-13 (real tiles, contours, results; SYNTHETIC doors) + Bruz."""
        from app.services.reference.imports.sample import load_sample

        try:
            load_sample(_owner_url(), quiet=quiet, on_progress=progress_bar(quiet))
        except ImportFailed as exc:
            raise failed(_("Import refused: {problem}").format(problem=exc.detail)) from None
