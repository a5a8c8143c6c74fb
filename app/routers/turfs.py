"""Turfs: draw, list, read, archive; automatic cut of districts or areas."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.schemas.field import CutManyRequest, CutRequest, TurfDraw
from app.security import CampaignScope
from app.services.field import cutting, turfs

router = APIRouter(tags=["turfs"])


def _dry_run(
    response: Response,
    dry_run: bool = Query(False, description="preview the turfs without saving them"),
) -> bool:
    """The ``dry_run`` query parameter; a dry run answers 200, not 201: it creates nothing."""
    if dry_run:
        response.status_code = 200
    return dry_run


DryRun = Annotated[bool, Depends(_dry_run)]


@router.post("/campaigns/{campaign_id}/turfs", status_code=201)
async def draw_turf(body: TurfDraw, ctx: CampaignScope) -> dict[str, Any]:
    """Draw a turf: a GeoJSON polygon (lon/lat) whose doors are the address points inside."""
    return await turfs.draw_turf(ctx, body)


@router.get("/campaigns/{campaign_id}/turfs")
async def list_turfs(
    ctx: CampaignScope,
    district: str | None = None,
    status: Literal["active", "archived", "all"] = "active",
) -> dict[str, Any]:
    """The campaign's turfs with doors, visited and flagged counts in the current round."""
    return {"turfs": await turfs.list_turfs(ctx, district=district, status=status)}


@router.get("/campaigns/{campaign_id}/turfs/{turf_id}")
async def get_turf(turf_id: uuid.UUID, ctx: CampaignScope) -> dict[str, Any]:
    """One turf with its live progress (by round) and its assignments."""
    return await turfs.get_turf(ctx, turf_id)


@router.post("/campaigns/{campaign_id}/turfs/{turf_id}/archive")
async def archive_turf(turf_id: uuid.UUID, ctx: CampaignScope) -> dict[str, Any]:
    """Archive a turf (its doors become free for another turf); 409 while assigned."""
    return await turfs.archive_turf(ctx, turf_id)


@router.post("/campaigns/{campaign_id}/districts/{code}/cut", status_code=201)
async def cut_district(
    code: str, body: CutRequest, ctx: CampaignScope, dry_run: DryRun
) -> dict[str, Any]:
    """Cut one district into turfs of about N doors, each with a walking order (201; a dry run
    answers 200 and stores nothing)."""
    return await cutting.cut_districts(ctx, [code], body, dry_run=dry_run)


@router.post("/campaigns/{campaign_id}/cut", status_code=201)
async def cut_many(body: CutManyRequest, ctx: CampaignScope, dry_run: DryRun) -> dict[str, Any]:
    """Cut a list of districts, or the free doors of a drawn area, into turfs (201; a dry run
    answers 200 and stores nothing)."""
    if body.districts is not None:
        return await cutting.cut_districts(ctx, body.districts, body, dry_run=dry_run)
    return await cutting.cut_area(ctx, body.area or {}, body, dry_run=dry_run)
