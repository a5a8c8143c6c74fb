"""`porte allocation refresh | status`: the tile-to-district allocation the ranking reads.

`refresh` rebuilds what imports queued (10 km blocks), one committed step at a time with a progress
bar: it can be interrupted (Ctrl-C, kill, a database restart) and run again, and it continues
where it stopped. Every `porte import` runs it at the end.
"""

from __future__ import annotations

import asyncio
import sys

import typer

from app.commands import command_group, failed
from app.i18n import _


def _owner_url() -> str:
    from app.config import get_settings
    from app.dburl import resolve_urls

    return resolve_urls(get_settings())[1]


class ProgressBar:
    """A rich bar over the blocks (on a terminal), or a line per step when asked (not a tty)."""

    def __init__(self, quiet: bool, lines: bool = False):
        self.quiet = quiet
        self.lines = lines
        self._bar = None
        self._task = None
        self._phase = ""

    def __call__(self, p) -> None:
        if self.quiet:
            return
        total = p.done + p.remaining
        if self.lines or not sys.stderr.isatty():
            if p.phase == "profiles":
                msg = _("allocation: {done:,} blocks rebuilt, summing district profiles...")
            else:
                msg = _("allocation: {done:,} of {total:,} blocks rebuilt")
            typer.echo(msg.format(done=p.done, total=total), err=True)
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(_("blocks")),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(_("allocation"), total=total, completed=p.done)
        if p.phase != self._phase and p.phase == "profiles":
            self._bar.update(self._task, description=_("district profiles"))
        self._phase = p.phase
        self._bar.update(self._task, total=total, completed=p.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def run_refresh(
    *,
    quiet: bool = False,
    full: bool = False,
    batch_blocks: int | None = None,
    throttle: float = 0.0,
    lines: bool = False,
) -> None:
    """Refresh with a progress bar and a closing line (also used by the import commands)."""
    import asyncpg

    from app.services.reference.allocation import refresh_in_steps

    bar = ProgressBar(quiet, lines)
    try:
        report = asyncio.run(
            refresh_in_steps(
                _owner_url(),
                full=full,
                batch_blocks=batch_blocks,
                throttle=throttle,
                on_progress=bar,
            )
        )
    except KeyboardInterrupt:
        bar.close()
        raise failed(
            _(
                "Interrupted: the blocks already rebuilt are kept; run the same command again to "
                "finish."
            ),
            130,
        ) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        bar.close()
        from app.dbfaults import disk_full_advice, is_disk_full

        if is_disk_full(exc):
            raise failed(
                _("The allocation refresh stopped: {error}.").format(
                    error=str(exc).splitlines()[0].rstrip(".")
                )
                + " "
                + disk_full_advice()
                + " "
                + _("Blocks already rebuilt are kept: `porte allocation refresh` continues.")
            ) from None
        raise failed(
            _(
                "The allocation refresh stopped: {error}. What was rebuilt is kept; run `porte "
                "allocation refresh` again to finish."
            ).format(error=exc)
        ) from None
    bar.close()
    if quiet:
        return
    msg = _("Allocation version {version}: {blocks:,} blocks rebuilt in {seconds:.1f} s").format(
        version=report.version, blocks=report.blocks, seconds=report.seconds
    )
    if report.resumed:
        msg += _(" (an interrupted run was continued)")
    typer.echo(msg + ".", err=True)
    if report.left:
        typer.echo(
            _(
                "{left:,} blocks are held by an import still running: run `porte allocation "
                "refresh` again once it has finished."
            ).format(left=report.left),
            err=True,
        )


def register(cli: typer.Typer) -> None:
    """Add the ``allocation`` group."""
    group = command_group(
        cli, "allocation", _("The tile-to-district allocation the ranking reads (refresh, status).")
    )

    @group.command()
    def refresh(
        full: bool = typer.Option(
            False, "--full", help=_("Rebuild everything, not only what changed.")
        ),
        batch_blocks: int = typer.Option(
            None, "--batch-blocks", min=1, help=_("10 km blocks per step (default: adaptive).")
        ),
        throttle: float = typer.Option(
            0.0, "--throttle", min=0.0, help=_("Seconds to pause between steps (busy server).")
        ),
        lines: bool = typer.Option(False, "--lines", help=_("One progress line per step.")),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=_("No progress output.")),
    ) -> None:
        """Rebuild what imports changed (resumable: run it again after an interruption)."""
        run_refresh(
            quiet=quiet, full=full, batch_blocks=batch_blocks, throttle=throttle, lines=lines
        )

    @group.command()
    def status() -> None:
        """Is the allocation fresh, and what is queued."""
        from app.db import make_engine
        from app.services.reference.allocation import allocation_state, pending_blocks

        async def read():
            engine = make_engine(_owner_url(), pool_size=1)
            try:
                async with engine.connect() as conn:
                    return await allocation_state(conn), await pending_blocks(conn)
            finally:
                await engine.dispose()

        state, pending = asyncio.run(read())
        fresh = _("fresh") if not state.stale else _("stale")
        typer.echo(
            _(
                "Allocation version {version} ({fresh}), refreshed {when}: {pairs:,} tile/district "
                "pairs, {doors:,} doors in districts."
            ).format(
                version=state.version,
                fresh=fresh,
                when=state.refreshed_at or _("never"),
                pairs=state.pairs or 0,
                doors=state.doors or 0,
            )
        )
        if state.stale:
            typer.echo(
                _("{blocks:,} blocks to rebuild{full}; run `porte allocation refresh`.").format(
                    blocks=pending, full=_(" (full rebuild)") if state.full_pending else ""
                )
            )
        if state.run_started_at is not None:
            typer.echo(
                _(
                    "An interrupted run started {when} ({done:,} blocks done) will be continued."
                ).format(when=state.run_started_at, done=state.run_blocks_done)
            )
