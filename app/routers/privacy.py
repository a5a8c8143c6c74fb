"""Public privacy notice, its QR code and the one-step objection / withdrawal form."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, Response

from app.security import Session, SettingsDep
from app.services import privacy

router = APIRouter(tags=["privacy"])


@router.get("/privacy/{campaign_id}", response_class=HTMLResponse)
async def privacy_notice(campaign_id: uuid.UUID, session: Session) -> HTMLResponse:
    """The campaign's privacy notice (French, GDPR art. 13/14)."""
    return HTMLResponse(await privacy.notice_html(session, campaign_id))


@router.get("/privacy/{campaign_id}/qr.svg")
async def privacy_qr(campaign_id: uuid.UUID, session: Session, settings: SettingsDep) -> Response:
    """A QR code to the notice, to print on door leaflets."""
    svg = await privacy.qr_svg(session, campaign_id, settings.public_base_url)
    return Response(svg, media_type="image/svg+xml")


@router.post("/privacy/{campaign_id}/objection", response_class=HTMLResponse)
async def privacy_objection(
    campaign_id: uuid.UUID,
    session: Session,
    settings: SettingsDep,
    kind: Annotated[str, Form()] = "objection",
    address: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """One step: an address (never visit this door again) or an e-mail (withdraw consent)."""
    html, _ = await privacy.public_request(
        session, settings, campaign_id, kind=kind, address=address, email=email
    )
    return HTMLResponse(html)
