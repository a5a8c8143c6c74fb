"""Public privacy notice, its QR code and the one-step objection / withdrawal form."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.errors import InvalidInput
from app.security import CampaignScope, DatabaseDep, Session, SettingsDep
from app.services.people import privacy

router = APIRouter(tags=["privacy"])


@router.get("/privacy/{campaign_id}", response_class=HTMLResponse)
async def privacy_notice(campaign_id: uuid.UUID, session: Session) -> HTMLResponse:
    """The campaign's privacy notice (French, GDPR art. 13/14)."""
    return HTMLResponse(await privacy.notice_html(session, campaign_id))


@router.get("/privacy/{campaign_id}/qr.svg")
async def privacy_qr(campaign_id: uuid.UUID, session: Session, settings: SettingsDep) -> Response:
    """A QR code to the notice, to print on door leaflets."""
    svg = await privacy.qr_svg(session, campaign_id, settings.base_url)
    return Response(svg, media_type="image/svg+xml")


@router.post("/privacy/{campaign_id}/objection", response_class=HTMLResponse)
async def privacy_objection(
    request: Request,
    campaign_id: uuid.UUID,
    session: Session,
    db: DatabaseDep,
    settings: SettingsDep,
    kind: Annotated[str, Form()] = "objection",
    address: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """One step: an address (never visit this door again) or an e-mail (withdraw consent)."""
    await privacy.throttle(db, request.client.host if request.client else None)
    html, _ = await privacy.public_request(
        session, settings, campaign_id, kind=kind, address=address, email=email
    )
    return HTMLResponse(html)


@router.get("/campaigns/{campaign_id}/privacy-requests")
async def list_privacy_requests(
    ctx: CampaignScope,
    include_done: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Objections and withdrawals received on the public form (admin; audited)."""
    return await privacy.list_requests(ctx, include_done=include_done, limit=limit, offset=offset)


@router.post("/campaigns/{campaign_id}/privacy-requests/{request_id}/resolve")
async def resolve_privacy_request(
    ctx: CampaignScope, request_id: uuid.UUID, body: dict[str, Any] | None = Body(None)
) -> dict:
    """Close a pending objection: flag the door picked by the admin (or none); forget the text."""
    raw = (body or {}).get("address_id")
    if raw is not None and not isinstance(raw, int):
        raise InvalidInput("must be a door id (integer) or null", field="address_id")
    return await privacy.resolve_request(ctx, request_id, raw)
