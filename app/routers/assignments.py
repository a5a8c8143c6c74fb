"""Assignments: give a turf to a volunteer or an invite; the volunteer's door payload."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import Response

from app.schemas.field import AssignmentCreate
from app.security import CampaignScope
from app.services.field import assignments, doors

router = APIRouter(tags=["assignments"])


@router.post("/campaigns/{campaign_id}/assignments", status_code=201)
async def create_assignment(body: AssignmentCreate, ctx: CampaignScope) -> dict[str, Any]:
    """Assign a turf (its door list is frozen now); a previous assignment of it is ended."""
    return await assignments.create_assignment(ctx, body)


@router.get("/campaigns/{campaign_id}/assignments")
async def list_assignments(
    ctx: CampaignScope, turf_id: uuid.UUID | None = None, active: bool = False
) -> dict[str, Any]:
    """Staff: all assignments; volunteers: only their own (invite sessions: the invite's)."""
    rows = await assignments.list_assignments(ctx, turf_id=turf_id, active_only=active)
    return {"assignments": rows}


@router.post("/campaigns/{campaign_id}/assignments/{assignment_id}/end")
async def end_assignment(assignment_id: uuid.UUID, ctx: CampaignScope) -> dict[str, Any]:
    """End an assignment now; its history and visits stay."""
    return await assignments.end_assignment(ctx, assignment_id)


@router.get("/campaigns/{campaign_id}/assignments/{assignment_id}/doors")
async def assignment_doors(
    assignment_id: uuid.UUID,
    ctx: CampaignScope,
    if_none_match: str | None = Header(default=None),
) -> Response:
    """The assignment's doors in walking order with status (GeoJSON); ETag / If-None-Match."""
    payload = await doors.assignment_doors(ctx, assignment_id, if_none_match)
    headers = {"ETag": payload.etag, "Cache-Control": "private, no-cache"}
    if payload.body is None:
        return Response(status_code=304, headers=headers)
    return Response(payload.body, media_type=doors.MEDIA_TYPE, headers=headers)
