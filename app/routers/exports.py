"""Exports of priority zones (GeoJSON, GeoPackage, Parquet, CSV, offline HTML map)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from app.db import statement_timeout
from app.i18n import _
from app.security import ReplicaScope
from app.services.access import audit
from app.services.ranking import exports as service
from app.services.ranking.service import Choice

router = APIRouter(tags=["exports"])


@router.get("/campaigns/{campaign_id}/exports/priority-zones.{ext}")
async def priority_zones(
    ext: str,
    ctx: ReplicaScope,
    preset: str | None = Query(None, description="mobilisation | persuasion | coverage"),
    election: str | None = None,
    side: str | None = None,
    limit: int | None = Query(
        None, ge=1, description="Only the first N districts (default: the whole territory)"
    ),
) -> Response:
    """District polygons of the campaign's territory with rank, score, contributions and
    aggregates; counts below k blank."""
    media_type = service.check_format(ext)
    await statement_timeout(ctx.session, ctx.settings.export_statement_timeout_s)
    gdf, meta = await service.priority_zones_frame(
        ctx.session,
        ctx.campaign_id,
        k=ctx.k_threshold,
        choice=Choice(preset, election, side),
        limit=limit,
        settings=ctx.settings,
    )
    title = _("Priority zones - campaign {cid}").format(cid=ctx.campaign_id)
    body = await run_in_threadpool(service.render, gdf, meta, ext, title=title)
    await audit.record(
        ctx,
        action="export.priority_zones",
        object=f"priority-zones.{ext}",
        rows=len(gdf),
        details={
            "preset": preset,
            "election": meta["election"]["name"],
            "side": meta["side"],
            "limit": limit,
        },
    )
    filename = f"priority-zones.{ext}"
    headers = {
        "Content-Disposition": f"{'inline' if ext == 'geojson' else 'attachment'}; "
        f'filename="{filename}"',
        "Cache-Control": "no-store",
    }
    if ext == "html":
        # A file to share, never a page of this origin: downloaded (attachment), and even if a
        # browser shows it, its scripts run sandboxed in an opaque origin (no access to the
        # app's storage, tokens or API) and it may load nothing from anywhere.
        headers["Content-Security-Policy"] = service.HTML_EXPORT_CSP
    return Response(body, media_type=media_type, headers=headers)
