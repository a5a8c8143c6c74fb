"""Canvassing rounds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.schemas.field import RoundCreate
from app.security import CampaignScope
from app.services.field import rounds

router = APIRouter(tags=["rounds"])


@router.get("/campaigns/{campaign_id}/rounds")
async def list_rounds(ctx: CampaignScope) -> dict[str, Any]:
    """Every round, oldest first; the last is the current one."""
    return {"rounds": await rounds.list_rounds(ctx)}


@router.post("/campaigns/{campaign_id}/rounds", status_code=201)
async def start_round(body: RoundCreate, ctx: CampaignScope) -> dict[str, Any]:
    """Start a new round: every door that is not flagged is red (pending) again."""
    return await rounds.start_round(ctx, body.name)
