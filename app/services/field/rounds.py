"""Canvassing rounds: starting a new one turns every door that is not flagged red again."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import CampaignContext
from app.i18n import _

# current_round(): the rule, once, in SQL (migration 0030_door_status).
_CURRENT = text(
    "SELECT r.id, r.number, r.name, r.started_at FROM current_round(:c) cur "
    "JOIN canvass_round r ON r.campaign_id = :c AND r.id = cur.id"
)


async def current_round(session: AsyncSession, campaign_id: uuid.UUID) -> Any | None:
    """The campaign's current round (highest number), or None before the first one."""
    return (await session.execute(_CURRENT, {"c": campaign_id})).first()


async def start_round(
    ctx: CampaignContext, name: str | None = None, *, only_if_none: bool = False
) -> dict[str, Any]:
    """Start round n + 1 (serialised per campaign, so two clicks never make the same number),
    named "Round n + 1" in the caller's language ("Tournée n + 1" in French) unless named."""
    await ctx.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
        {"k": f"round:{ctx.campaign_id}"},
    )
    if only_if_none:
        cur = await current_round(ctx.session, ctx.campaign_id)
        if cur is not None:
            return _out(cur, current=True)
    number = (
        await ctx.session.execute(
            text("SELECT coalesce(max(number), 0) + 1 FROM canvass_round WHERE campaign_id = :c"),
            {"c": ctx.campaign_id},
        )
    ).scalar_one()
    # Named in the language of whoever starts it ("Tournée 2" in French), unless named.
    row = (
        await ctx.session.execute(
            text(
                "INSERT INTO canvass_round (campaign_id, number, name, created_by) "
                "VALUES (:c, :num, :n, :u) RETURNING id, number, name, started_at"
            ),
            {
                "c": ctx.campaign_id,
                "num": number,
                "n": name or _("Round {n}").format(n=number),
                "u": ctx.user_id,
            },
        )
    ).one()
    return _out(row, current=True)


def _out(row: Any, *, current: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "name": row.name,
        "started_at": row.started_at,
        "current": current,
    }


async def list_rounds(ctx: CampaignContext) -> list[dict[str, Any]]:
    """Every round of the campaign, oldest first; the last one is current."""
    rows = (
        await ctx.session.execute(
            text(
                "SELECT r.id, r.number, r.name, r.started_at, "
                "r.id = (SELECT id FROM current_round(:c)) AS current "
                "FROM canvass_round r WHERE r.campaign_id = :c ORDER BY r.number"
            ),
            {"c": ctx.campaign_id},
        )
    ).all()
    return [_out(r, current=r.current) for r in rows]
