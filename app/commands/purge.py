"""`porte purge [--dry-run] [--every 24h]`: apply the retention rules (idempotent).

Run it daily: ``--every 24h`` keeps it running and repeats (the compose file's ``purge`` service
does this); a systemd timer (``deploy/systemd/porte-purge.timer``) or a cron line run it once a
day otherwise.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time

import typer

from app.config import get_settings
from app.db import owner_engine
from app.i18n import N_, _

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
RETRY_SECONDS = 300  # after a failed run (database not up yet...), try again this soon


def parse_duration(value: str) -> int:
    """Seconds in '86400', '90s', '30m', '24h' or '1d'; BadParameter otherwise."""
    m = _DURATION.match(value or "")
    seconds = int(m.group(1)) * _UNIT[m.group(2)] if m else 0
    if seconds < 1:
        raise typer.BadParameter(
            _("give a duration such as 24h, 30m, 1d or a number of seconds (got {value!r})").format(
                value=value
            ),
            param_hint="--every",
        )
    return seconds


def register(cli: typer.Typer) -> None:
    """Add the ``purge`` command."""

    @cli.command()
    def purge(
        dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
        every: str | None = typer.Option(
            None,
            "--every",
            help="Keep running and purge again after this long (24h, 1d, 30m, seconds); "
            "a failed run is retried after 5 minutes.",
        ),
    ) -> None:
        """Delete visits, supporters, requests, audit events past their retention (keeps flags)."""
        interval = parse_duration(every) if every is not None else None
        if interval is None:
            _run_once(dry_run)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_a: stop.set())
        while not stop.is_set():
            started = time.monotonic()
            try:
                _run_once(dry_run)
                wait = interval
            except Exception as exc:  # noqa: BLE001 - keep the schedule alive, say why
                why = (str(exc).splitlines() or [""])[0]
                typer.secho(
                    _("purge failed ({error}); trying again in {n} s").format(
                        error=f"{type(exc).__name__}: {why}",
                        n=min(RETRY_SECONDS, interval),
                    ),
                    fg="red",
                    err=True,
                )
                wait = min(RETRY_SECONDS, interval)
            stop.wait(max(0.0, wait - (time.monotonic() - started)))


# What ``porte purge`` counts, as people read it (the keys of app.services.people.purge).
PURGED = {
    "visits": N_("visits"),
    "supporters": N_("supporters"),
    "withdrawal_proofs": N_("withdrawal proofs"),
    "privacy_requests": N_("privacy requests"),
    "privacy_requests_unhandled": N_("unhandled privacy requests"),
    "member_invitations": N_("member invitations"),
    "audit_events": N_("audit events"),
}


def _run_once(dry_run: bool) -> None:
    from app.services.people.purge import purge as run

    settings = get_settings()

    def show(camp, counts) -> None:
        verb = _("due") if dry_run else _("deleted")
        parts = ", ".join(
            _("{what} {n}").format(what=_(PURGED.get(k, k)), n=v)
            for k, v in counts.items()
            if k != "visits_due"
        )
        typer.echo(
            _("campaign {id} ({name}): {verb}: {parts}").format(
                id=camp.id, name=camp.name, verb=verb, parts=parts
            )
        )

    async def with_owner() -> dict:
        async with owner_engine(settings) as engine:
            return await run(
                engine,
                dry_run=dry_run,
                audit_days=settings.audit_retention_days,
                settings=settings,
                progress=show,
            )

    res = asyncio.run(with_owner())
    total = sum(sum(v for k, v in c.items() if k != "visits_due") for c in res.values())
    if dry_run:
        message = _(
            "{campaigns} campaigns checked; {rows} rows would be deleted (dry run: "
            "nothing changed)."
        )
    else:
        message = _("{campaigns} campaigns checked; {rows} rows deleted.")
    typer.echo(message.format(campaigns=len(res), rows=total))
