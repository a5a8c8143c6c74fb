"""`porte demo`: a private PostGIS, the 92-13 sample, a demo campaign with one account per role."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import typer

from app.commands import failed
from app.i18n import _


async def _seed(settings, owner_url: str, password: str) -> dict:
    """Demo campaign and accounts, then turfs, assignments, an invite and SYNTHETIC supporters
    through the API."""
    import httpx

    from app.commands.demo_field import seed_field
    from app.commands.demo_seed import create_demo_campaign_async
    from app.commands.demo_supporters import seed_supporters
    from app.db import make_engine
    from app.main import create_app

    engine = make_engine(owner_url)
    try:
        info = await create_demo_campaign_async(engine, password)
    finally:
        await engine.dispose()
    info.update(await seed_field(settings, info["campaign_id"], password))
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            info.update(await seed_supporters(settings, info["campaign_id"], password, client=c))
    finally:
        await app.state.db.dispose()
    return info


def sample_loaded(owner_url: str) -> bool:
    """True when the reference tables already hold tiles, districts and doors."""
    import asyncio

    from sqlalchemy import text

    from app.db import make_engine

    async def _check() -> bool:
        engine = make_engine(owner_url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM insee_tile) > 0 AND "
                            "(SELECT count(*) FROM district) > 0 AND "
                            "(SELECT count(*) FROM address) > 0"
                        )
                    )
                ).scalar_one()
                return bool(row)
        finally:
            await engine.dispose()

    return asyncio.run(_check())


def _demo_basemap(settings, owner_url: str, *, rebuild: bool) -> None:
    """Serve the basemap the campaign installed (PORTE_BASEMAP) if any; else a placeholder built
    from the loaded layers, next to the database, and say plainly that it is one."""
    from app.commands.basemap import build_placeholder_file
    from app.services.field.basemap import BasemapError, open_archive

    if settings.basemap.exists():
        try:
            archive = open_archive(settings.basemap)
        except BasemapError as exc:
            msg = _("Basemap at {path} not usable: {detail}")
            typer.secho(msg.format(path=settings.basemap, detail=exc.detail), fg="red")
        else:
            msg = _("Basemap: {path} ({name}).")
            typer.echo(msg.format(path=settings.basemap, name=archive.info()["name"]))
            archive.close()
            return
    out = settings.db_dir.parent / "demo-basemap.pmtiles"
    if rebuild or not out.exists():
        typer.echo(_("Building the placeholder basemap from the sample's layers..."))
        info = build_placeholder_file(owner_url, out)
        msg = _("  {tiles} tiles, {size} MB: {path}")
        size = f"{info['size_bytes'] / 1e6:.1f}"
        typer.echo(msg.format(tiles=info["tiles"], size=size, path=out))
    os.environ["PORTE_BASEMAP"] = str(out)
    typer.secho(
        _(
            "Basemap: a PLACEHOLDER built from the sample (communes, polling stations, door "
            "points, street labels), not a street map. Install a real OpenStreetMap extract with "
            "`porte basemap import FILE.pmtiles` (docs/maps.md)."
        ),
        fg="yellow",
    )


def _start_database(reload_sample: bool) -> Any:
    """Demo mode; the private PostGIS cluster started (unless a database URL is set), the schema
    migrated, the sample loaded once (again with ``reload_sample``), the basemap; the settings."""
    from app.commands.progress import progress_bar
    from app.config import get_settings
    from app.db import resolve_urls
    from app.local_secrets import announce_once
    from app.migrate import upgrade
    from app.pgcluster import Cluster, ClusterError
    from app.services.reference.imports.sample import load_sample

    os.environ["PORTE_MODE"] = "demo"
    settings = get_settings()
    announce_once(settings, lambda m: typer.secho(m, fg="yellow"))
    if settings.database_url is None:
        cluster = Cluster(settings.db_dir, settings.db_port)
        try:
            cluster.start(install=True)
        except ClusterError as exc:
            raise failed(str(exc)) from exc
        typer.echo(
            _("PostGIS cluster running on 127.0.0.1:{port} (data in {data_dir}).").format(
                port=cluster.port, data_dir=cluster.data_dir
            )
        )
    owner_url = resolve_urls(settings)[1]
    upgrade(owner_url)
    typer.echo(_("Database schema is up to date."))

    if reload_sample or not sample_loaded(owner_url):
        typer.echo(_("Loading the 92-13 sample (INSEE tiles, polling stations, results, doors)"))
        load_sample(owner_url, on_progress=progress_bar(False))
    else:
        typer.echo(_("Sample data already loaded (use --reload-sample to re-import)."))

    _demo_basemap(settings, owner_url, rebuild=reload_sample)
    return settings


def _print_ready(info: dict, settings: Any, base: str, password: str, sink: Any) -> None:
    """What the demo made and where to look: accounts, the invite link, the maps, what is
    SYNTHETIC, where mail and secrets go."""
    from app.commands.demo_field import DEMO_DISTRICT
    from app.commands.demo_seed import DEMO_SIDE

    typer.secho("\n" + _("Demo campaign ready: {name}").format(name=info["name"]), bold=True)
    typer.echo(
        _("  campaign id: {cid} (election {date})").format(
            cid=info["campaign_id"], date=info["election_date"]
        )
    )
    for email in info["accounts"]:
        typer.echo(f"  {email:<24} " + _("password: {password}").format(password=password))

    typer.echo(
        _(
            "  {turfs} turfs of about 150 households cut in polling station {district}; "
            "three assigned to volunteer@demo.local, one to this invite link (open it on "
            "a phone):"
        ).format(turfs=info["turfs"], district=DEMO_DISTRICT)
    )
    typer.echo(f"  {info['invite_link']}")
    if info.get("visits"):
        typer.echo(
            _(
                "  {visits} SYNTHETIC visits recorded over {rounds} rounds by "
                "volunteer@demo.local: grey doors on the maps, GET /campaigns/{cid}/progress."
            ).format(visits=info["visits"], rounds=info["rounds"], cid=info["campaign_id"])
        )
    typer.echo(
        _(
            "  The campaign's side is {side} (a nuance of the sample's elections, chosen only "
            "because it ran in all of them): the ranking's side, closeness and swing factors "
            "count. Choose yours: GET /elections/{{id}}/sides, PUT /campaigns/{cid}/weights."
        ).format(side=DEMO_SIDE, cid=info["campaign_id"])
    )
    typer.echo(_("  API docs: {url}").format(url=f"{base}/docs"))
    typer.echo(
        _("  organiser map: {organiser}   analyst map: {analyst}").format(
            organiser=f"{base}/organiser/", analyst=f"{base}/analyst/"
        )
    )
    typer.secho(
        _(
            "  Door points of 92-13 are SYNTHETIC (generated from INSEE household counts); "
            "import your département's BAN file to replace them."
        ),
        fg="yellow",
    )
    typer.secho(
        _(
            "  {n} SYNTHETIC consented supporters (made-up people, consent recorded per "
            "purpose): as admin@demo.local try GET /campaigns/{cid}/supporters/review, "
            "/supporters/aggregates (cells below k suppressed) and the GDPR rights "
            '(docs/privacy.md, "Trying them on the demo").'
        ).format(n=info["supporters"], cid=info["campaign_id"]),
        fg="yellow",
    )
    if sink is not None:
        typer.echo(
            _(
                "  Mail is not sent out (no PORTE_SMTP_HOST): a local sink on 127.0.0.1:{port} "
                "writes every message (invitations, the privacy form's confirmation links) "
                "to {folder}, one .eml file each (plain text): open the newest to follow "
                "its link."
            ).format(port=sink.port, folder=sink.folder)
        )
    if settings.local_secrets is not None:
        typer.echo(
            _(
                "  Secrets (token signing, data keys of the supporters): {path} - keep it "
                "with the cluster."
            ).format(path=settings.local_secrets.path)
        )


def register(cli: typer.Typer) -> None:
    """Add ``demo``."""

    @cli.command()
    def demo(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port to listen on."),
        serve: bool = typer.Option(True, help="Start the service after loading."),
        reload_sample: bool = typer.Option(
            False, "--reload-sample", help="Re-import the sample data even if already loaded."
        ),
    ) -> None:
        """Start everything with the sample data loaded (demo mode: never for real data)."""
        from app.config import get_settings
        from app.db import resolve_urls

        settings = _start_database(reload_sample)

        password = os.environ.get("PORTE_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        from app.config import base_url_for

        base = base_url_for(host, port)
        os.environ.setdefault("PORTE_PUBLIC_BASE_URL", base)
        from app.commands.demo_mail import start_demo_mail

        sink = start_demo_mail(settings)  # before the app's settings are read: they point at it
        app_url, owner_url = resolve_urls(settings)
        settings = get_settings().model_copy(
            update={"database_url": app_url, "owner_database_url": owner_url}
        )
        info = asyncio.run(_seed(settings, owner_url, password))
        _print_ready(info, settings, base, password, sink)
        try:
            if serve:
                import uvicorn

                uvicorn.run(
                    "app.main:create_app", factory=True, host=host, port=port, log_level="info"
                )
        finally:
            if sink is not None:
                sink.stop()
