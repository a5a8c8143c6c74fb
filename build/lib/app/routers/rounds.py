"""Canvassing rounds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.routers.turfs import committed, json_response
from app.security import CampaignScope
from app.services.field import rounds

router = APIRouter(tags=["rounds"])


@router.get("/campaigns/{campaign_id}/rounds")
async def list_rounds(ctx: CampaignScope) -> Response:
    """Every round, oldest first; the last is the current one."""
    data = {"rounds": await rounds.list_rounds(ctx)}
    return json_response(data)


@router.post("/campaigns/{campaign_id}/rounds", status_code=201)
async def start_round(body: rounds.RoundCreate, ctx: CampaignScope) -> Response:
    """Start a new round: every door that is not flagged is red (pending) again."""
    data = await rounds.start_round(ctx, body.name)
    return await committed(ctx, data, 201)
