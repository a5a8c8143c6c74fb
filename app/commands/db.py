"""`porte db start | stop | status | url | migrate | replica`: the private PostGIS cluster."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from app.commands import failed
from app.config import get_settings
from app.i18n import _
from app.pgcluster import Cluster, ClusterError


def _cluster() -> Cluster:
    s = get_settings()
    return Cluster(s.db_dir, s.db_port)


def _fail(exc: Exception) -> None:
    raise failed(str(exc))


def register(cli: typer.Typer) -> None:
    """Add the ``db`` group (its length: six short commands declared)."""
    db = typer.Typer(
        help="Manage the project's private PostGIS cluster (not needed with DATABASE_URL)."
    )
    cli.add_typer(db, name="db")

    @db.command()
    def start(
        install: bool = typer.Option(
            False, "--install", help="Install the Debian packages when missing (root)."
        ),
        migrate: bool = typer.Option(True, help="Apply database migrations after starting."),
    ) -> None:
        """Create (first time) and start the private cluster, then migrate it."""
        c = _cluster()
        try:
            c.start(install=install)
        except ClusterError as exc:
            _fail(exc)
        typer.echo(
            _("PostGIS cluster running on 127.0.0.1:{port} (data in {data_dir}).").format(
                port=c.port, data_dir=c.data_dir
            )
        )
        if migrate:
            from app.migrate import upgrade

            upgrade(c.url("owner"))
            typer.echo(_("Database schema is up to date."))

    @db.command()
    def stop() -> None:
        """Stop the private cluster."""
        c = _cluster()
        try:
            c.stop()
        except ClusterError as exc:
            _fail(exc)
        typer.echo(_("PostGIS cluster stopped."))

    @db.command()
    def status() -> None:
        """Say whether the cluster exists and runs."""
        try:
            info = _cluster().status()
        except ClusterError as exc:
            _fail(exc)
        typer.echo(json.dumps(info, indent=2))
        if not info["running"]:
            raise typer.Exit(3)

    @db.command()
    def url(
        role: str = typer.Option("app", help="'app' (the service) or 'owner' (migrations)."),
    ) -> None:
        """Print the connection URL of the private cluster."""
        try:
            typer.echo(_cluster().url(role))
        except (ClusterError, KeyError) as exc:
            _fail(exc)

    @db.command()
    def migrate(revision: str = typer.Argument("head")) -> None:
        """Apply migrations up to REVISION (as the schema owner)."""
        from app.dburl import resolve_urls
        from app.migrate import upgrade

        upgrade(resolve_urls(get_settings())[1], revision)
        typer.echo(_("Database migrated to {revision}.").format(revision=revision))

    @db.command()
    def replica(
        data_dir: Path = typer.Argument(..., help="Folder of the new standby (must not exist)."),
        port: int = typer.Option(..., "--port", help="Port of the standby (127.0.0.1)."),
    ) -> None:
        """Make a streaming replica (hot standby) of the private cluster and start it."""
        c = _cluster()
        try:
            if not c.is_running():
                raise ClusterError(_("The private cluster is not running: `porte db start` first."))
            standby = c.create_standby(data_dir, port)
        except ClusterError as exc:
            _fail(exc)
        typer.echo(
            _(
                "Streaming replica running on 127.0.0.1:{port} (data in {dir}). Reads that "
                "tolerate lag go to it once the service has:\n    PORTE_REPLICA_URL={url}\n"
                "Start it again later with PORTE_DB_DIR={dir} PORTE_DB_PORT={port} "
                "porte db start --no-migrate (docs/scale.md)."
            ).format(port=port, dir=standby.data_dir, url=standby.url("app"))
        )
