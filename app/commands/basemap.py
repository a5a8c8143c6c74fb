"""`porte basemap import | info | placeholder`: the vector basemap the service serves itself."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import typer

from app.commands import command_group, failed
from app.i18n import _


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


async def _area(owner_url: str, campaign: str | None):
    from app.db import make_engine
    from app.services.field.basemap import area_to_cover

    engine = make_engine(owner_url)
    try:
        async with engine.connect() as conn:
            return await area_to_cover(conn, campaign)
    finally:
        await engine.dispose()


def import_basemap(
    source: Path, target: Path, owner_url: str | None, campaign: str | None = None
) -> dict:
    """Check ``source`` (PMTiles, vector, covering the campaigns' districts) and copy it to
    ``target`` atomically. Raises BasemapError; leaves ``target`` untouched on any error."""
    from app.services.field.basemap import check_coverage, open_archive

    archive = open_archive(source)
    try:
        if owner_url is not None:
            area, what = asyncio.run(_area(owner_url, campaign))
            check_coverage(archive, area, what)
        info = archive.info()
    finally:
        archive.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(source, tmp)
        tmp.replace(target)  # the running service re-opens it within two seconds
    return info


def register(cli: typer.Typer) -> None:
    """Add ``basemap`` (long: it declares its commands and their options)."""
    bm = command_group(
        cli,
        "basemap",
        "The vector basemap the service serves itself (PMTiles): import, info, placeholder.",
    )

    @bm.command("import")
    def import_(
        file: Path = typer.Argument(..., help="A PMTiles archive of vector tiles (docs/maps.md)."),
        campaign: str = typer.Option(
            None, "--campaign", help="Check coverage of this campaign's turfs' districts only."
        ),
        no_check: bool = typer.Option(
            False, "--no-coverage-check", help="Skip the check against the loaded districts."
        ),
    ) -> None:
        """Check a PMTiles archive and install it as the basemap (PORTE_BASEMAP)."""
        from app.config import get_settings
        from app.dburl import resolve_urls
        from app.services.field.basemap import BasemapError

        settings = get_settings()
        owner_url = None if no_check else resolve_urls(settings)[1]
        try:
            info = import_basemap(file, settings.basemap, owner_url, campaign)
        except BasemapError as exc:
            msg = _("Basemap refused: {detail}").format(detail=exc.detail)
            raise failed(msg) from None
        except OSError as exc:
            raise failed(_("Basemap not installed: {reason}").format(reason=exc)) from None
        w, s, e, n = info["bounds"]
        typer.echo(
            _(
                "Basemap installed at {path}: {name}, {size}, zooms {z0}-{z1}, layers {layers}, "
                "covering longitude {w:.4f} to {e:.4f}, latitude {s:.4f} to {n:.4f}."
            ).format(
                path=settings.basemap,
                name=info["name"],
                size=_mb(info["size_bytes"]),
                z0=info["minzoom"],
                z1=info["maxzoom"],
                layers=", ".join(info["layers"]),
                w=w,
                e=e,
                s=s,
                n=n,
            )
        )
        if info["placeholder"]:
            typer.secho(
                _("This is a placeholder basemap, not a street map: see docs/maps.md."),
                fg="yellow",
            )

    @bm.command("info")
    def info_() -> None:
        """Show the installed basemap (path, area, zooms, layers, size)."""
        from app.config import get_settings
        from app.services.field.basemap import BasemapError, open_archive

        settings = get_settings()
        try:
            archive = open_archive(settings.basemap)
        except BasemapError as exc:
            raise failed(exc.detail) from None
        try:
            typer.echo(json.dumps(archive.info(), ensure_ascii=False, indent=2))
        finally:
            archive.close()

    @bm.command("placeholder")
    def placeholder(
        out: Path = typer.Argument(None, help="Where to write it (default: PORTE_BASEMAP)."),
    ) -> None:
        """Build a placeholder basemap from the loaded layers (communes, polling stations,
        doors, street labels): for a demo, never a street map."""
        from app.config import get_settings
        from app.dburl import resolve_urls

        settings = get_settings()
        info = build_placeholder_file(resolve_urls(settings)[1], out or settings.basemap)
        typer.echo(
            _("Placeholder basemap written to {path}: {tiles} tiles, {size}.").format(
                path=info["path"], tiles=info["tiles"], size=_mb(info["size_bytes"])
            )
        )


def build_placeholder_file(owner_url: str, out: Path) -> dict:
    """Build the placeholder archive from the database at ``owner_url`` (blocking)."""
    from app.db import make_engine
    from app.services.field.basemap_build import build_placeholder

    async def run() -> dict:
        engine = make_engine(owner_url)
        try:
            return await build_placeholder(engine, out)
        finally:
            await engine.dispose()

    return asyncio.run(run())
