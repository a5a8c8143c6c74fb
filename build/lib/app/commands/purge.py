"""`porte purge [--dry-run]`: apply the retention rules (safe from cron, idempotent)."""

from __future__ import annotations

import asyncio

import typer

from app.config import get_settings
from app.dburl import resolve_urls


def register(cli: typer.Typer) -> None:
    """Add the ``purge`` command."""

    @cli.command()
    def purge(
        dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
    ) -> None:
        """Delete visits, supporters, audit events past their retention date (keeps door flags)."""
        from app.services.people.purge import purge as run

        settings = get_settings()

        def show(camp, counts) -> None:
            verb = "due" if dry_run else "deleted"
            parts = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "visits_due")
            typer.echo(f"campaign {camp.id} ({camp.name}): {verb}: {parts}")

        res = asyncio.run(
            run(
                resolve_urls(settings)[1],
                dry_run=dry_run,
                audit_days=settings.audit_retention_days,
                progress=show,
            )
        )
        total = sum(sum(v for k, v in c.items() if k != "visits_due") for c in res.values())
        typer.echo(
            f"{len(res)} campaigns checked; {total} rows "
            + ("would be deleted (dry run: nothing changed)." if dry_run else "deleted.")
        )
