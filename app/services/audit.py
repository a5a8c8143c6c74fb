"""Audit log of every view or export of precise locations or personal data (append-only)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from app.security import CampaignContext


async def record(
    ctx: CampaignContext, *, action: str, object: str | None, rows: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Insert one audit event in the request's transaction."""
    await ctx.session.execute(
        text(
            "INSERT INTO audit_event (campaign_id, actor_user_id, actor_invite_id, role, action, "
            "object, row_count, request_id, client, details) VALUES (:c, :u, :i, :r, :a, :o, :n, "
            ":rid, :cl, CAST(:d AS jsonb))"
        ),
        {
            "c": ctx.campaign_id, "u": ctx.principal.user_id, "i": ctx.principal.invite_id,
            "r": ctx.role, "a": action, "o": object, "n": rows, "rid": ctx.request_id,
            "cl": ctx.client, "d": json.dumps(details) if details else None,
        },
    )
