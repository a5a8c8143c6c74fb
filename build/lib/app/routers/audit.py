"""The audit log (admins only): who saw or exported precise locations or personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.schemas import AuditEventOut
from app.security import CampaignScope
from app.services.access import audit as service

router = APIRouter(tags=["audit"])


@router.get(
    "/campaigns/{campaign_id}/audit",
    response_model=list[AuditEventOut],
    responses={200: {"content": {"text/csv": {}}}},
)
async def audit_log(
    ctx: CampaignScope,
    actor: Annotated[
        str | None, Query(max_length=254, description="account id, invite id or e-mail")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=100, description="exact, or prefix with '*'")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    flagged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Literal["json", "csv"] = "json",
):
    """Audit events, newest first; ``flagged=true`` shows bursts; ``format=csv`` downloads."""
    events = await service.list_events(
        ctx, actor=actor, action=action, since=since, until=until, flagged=flagged, limit=limit
    )
    await service.record(
        ctx, action=f"access.audit.{'export' if format == 'csv' else 'view'}", rows=len(events)
    )
    if format == "csv":
        return Response(
            service.to_csv(events),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="audit-{ctx.campaign_id}.csv"',
                "Cache-Control": "no-store",
            },
        )
    return events
