"""Turfs: draw, list, read, archive; automatic cut of districts or areas."""

from __future__ import annotations

import uuid
from typing import Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.context import CampaignContext
from app.security import CampaignScope
from app.services.field import cutting, turfs

router = APIRouter(tags=["turfs"])


def json_response(data: object, status: int = 200) -> Response:
    """JSON via orjson (UUIDs from asyncpg, datetimes); shared by the field routers."""
    body = orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")


_json = json_response


async def committed(ctx: CampaignContext, data: object, status: int = 200) -> Response:
    """Commit the request's transaction, then answer.

    FastAPI closes request-scoped ``yield`` dependencies (the session) only after the response
    has been sent, so without this a phone could be told "created" before the visit is durable,
    or read its new assignment before it is visible.
    """
    await ctx.session.commit()
    return json_response(data, status)


@router.post("/campaigns/{campaign_id}/turfs", status_code=201)
async def draw_turf(body: turfs.TurfDraw, ctx: CampaignScope) -> Response:
    """Draw a turf: a GeoJSON polygon (lon/lat) whose doors are the address points inside."""
    return await committed(ctx, await turfs.draw_turf(ctx, body), 201)


@router.get("/campaigns/{campaign_id}/turfs")
async def list_turfs(
    ctx: CampaignScope,
    district: str | None = None,
    status: Literal["active", "archived", "all"] = "active",
) -> Response:
    """The campaign's turfs with doors, visited and flagged counts in the current round."""
    return _json({"turfs": await turfs.list_turfs(ctx, district=district, status=status)})


@router.get("/campaigns/{campaign_id}/turfs/{turf_id}")
async def get_turf(turf_id: uuid.UUID, ctx: CampaignScope) -> Response:
    """One turf with its live progress (by round) and its assignments."""
    return _json(await turfs.get_turf(ctx, turf_id))


@router.post("/campaigns/{campaign_id}/turfs/{turf_id}/archive")
async def archive_turf(turf_id: uuid.UUID, ctx: CampaignScope) -> Response:
    """Archive a turf (its doors become free for another turf); 409 while assigned."""
    return await committed(ctx, await turfs.archive_turf(ctx, turf_id))


@router.post("/campaigns/{campaign_id}/districts/{code}/cut")
async def cut_district(
    code: str,
    body: cutting.CutRequest,
    ctx: CampaignScope,
    dry_run: bool = Query(False, description="preview the turfs without saving them"),
) -> Response:
    """Cut one district into turfs of about N doors, each with a walking order."""
    result = await cutting.cut_districts(ctx, [code], body, dry_run=dry_run)
    return await committed(ctx, result, 200 if dry_run else 201)


@router.post("/campaigns/{campaign_id}/cut")
async def cut_many(
    body: cutting.CutManyRequest,
    ctx: CampaignScope,
    dry_run: bool = Query(False, description="preview the turfs without saving them"),
) -> Response:
    """Cut a list of districts, or the free doors of a drawn area, into turfs."""
    if body.districts is not None:
        result = await cutting.cut_districts(ctx, body.districts, body, dry_run=dry_run)
    else:
        result = await cutting.cut_area(ctx, body.area or {}, body, dry_run=dry_run)
    return await committed(ctx, result, 200 if dry_run else 201)
