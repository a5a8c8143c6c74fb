"""`porte rank --campaign ID --preset P`: the top districts and their first three reasons."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from app.services.ranking.service import Choice


async def _rank(campaign: uuid.UUID, choice: Choice, limit: int) -> tuple[dict, str]:
    from sqlalchemy import text

    from app import disclosure
    from app.config import get_settings
    from app.db import owner_engine, set_tenant
    from app.i18n import _
    from app.services.ranking import service as ranking

    settings = get_settings()
    async with owner_engine(settings) as engine:
        async with engine.connect() as conn, conn.begin():
            row = (
                await conn.execute(
                    text("SELECT name, k_threshold FROM campaign WHERE id = :c"), {"c": campaign}
                )
            ).first()
            if row is None:
                raise typer.BadParameter(
                    _("No campaign {campaign}.").format(campaign=campaign), param_hint="--campaign"
                )
            await set_tenant(conn, campaign)  # type: ignore[arg-type]
            result = await ranking.ranking(
                conn, campaign, k=row.k_threshold, choice=choice, limit=limit, settings=settings
            )
        result["districts"] = [disclosure.apply_k(d, row.k_threshold) for d in result["districts"]]
        return result, row.name


def _print_ranking(console: Any, result: dict, name: str, campaign: uuid.UUID) -> None:
    """The ranked districts as a table (weights, election, side and swing in its caption), the
    weighted factors left out and why, or why there is nothing to rank."""
    from rich.table import Table

    from app.i18n import _, number
    from app.services.ranking.factors import FACTORS, reasons, signed

    weights = ", ".join(
        f"{_(FACTORS[k].label) if k in FACTORS else k} {signed(v)}"
        for k, v in result["weights"].items()
    )
    none = _("none")
    table = Table(
        title=_("{name}: where to knock first ({weights_from})").format(
            name=name, weights_from=result.get("weights_from") or _("stored")
        ),
        caption=_(
            "weights: {weights} | election: {election} | side: {side} | swing from: {swing}"
        ).format(
            weights=weights,
            election=result["election"]["name"] or none,
            side=result["side"] or none,
            swing=(result.get("swing_from") or {}).get("name") or none,
        ),
    )
    for col, kw in (
        ("#", {"justify": "right"}),
        (_("District"), {}),
        (_("Name"), {}),
        (_("Score"), {"justify": "right"}),
        (_("Why (largest contributions)"), {}),
    ):
        table.add_column(col, **kw)
    for d in result["districts"]:
        table.add_row(
            str(d["rank"]),
            d["code"],
            d["name"] or "",
            signed(d["score"]),
            "\n".join(reasons(d)) or _("no factor with data"),
        )
    if result.get("empty"):  # nothing to rank: why, and what to do
        console.print(
            f"[yellow]{result['empty']['detail']}[/yellow] {result['empty']['action']}",
            highlight=False,
        )
        return
    console.print(table)
    absent = [f for f in result["factors"] if f["weight"] and f["status"] != "used"]
    for f in absent:
        console.print(
            "[yellow]" + _("Left out") + f"[/yellow] {f['label']}: {f['reason']}",
            highlight=False,
        )
    console.print(
        _(
            "{n} districts ranked (territory: {kind} {codes}). Explain one with "
            "GET /campaigns/{cid}/districts/<code>."
        ).format(
            n=number(result["total_districts"]),
            kind=result["territory"]["kind"],
            codes=" ".join(result["territory"]["codes"]),
            cid=campaign,
        ),
        highlight=False,
    )


def register(cli: typer.Typer) -> None:
    """Add the ``rank`` command."""

    @cli.command()
    def rank(
        campaign: uuid.UUID = typer.Option(..., "--campaign", help="Campaign id."),
        preset: str = typer.Option(
            None,
            "--preset",
            help="mobilisation | persuasion | coverage (default: campaign weights)",
        ),
        election: str = typer.Option(None, help="Loaded election id or name (default: latest)."),
        side: str = typer.Option(
            None,
            help="Our side: a nuance code, a party, list or candidate name (comma-separated for "
            "an alliance).",
        ),
        swing_from: str = typer.Option(
            None,
            "--swing-from",
            help="Reference (earlier) election of the swing (default: the most recent other "
            "loaded election with the side).",
        ),
        limit: int = typer.Option(15, min=1, help="How many districts to show."),
    ) -> None:
        """Print the districts to visit first, with the three largest reasons for each."""
        from rich.console import Console

        from app.errors import PorteError
        from app.services.ranking.service import Choice

        console = Console()
        try:
            choice = Choice(preset, election, side, swing_from)
            result, name = asyncio.run(_rank(campaign, choice, limit))
        except PorteError as exc:
            console.print(f"[red]{exc.detail}[/red]", highlight=False)
            raise typer.Exit(2) from exc
        _print_ranking(console, result, name, campaign)
