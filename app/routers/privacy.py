"""Public privacy notice, its QR code, the form (door objection at once; withdrawal, export and
erasure confirmed from a link sent by e-mail), and the admin's review of what the form received."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.routers.responses import json_as
from app.schemas.people import DoorObjectionRevert, PrivacyRequestResolve
from app.security import CampaignScope, DatabaseDep, Session, SettingsDep, client_address
from app.services.people import door_objections, privacy, privacy_form

router = APIRouter(tags=["privacy"])


@router.get("/privacy/{campaign_id}", response_class=HTMLResponse)
async def privacy_notice(
    campaign_id: uuid.UUID, session: Session, settings: SettingsDep
) -> HTMLResponse:
    """The campaign's privacy notice (French, GDPR art. 13/14)."""
    return HTMLResponse(
        await privacy.notice_html(session, campaign_id, link_hours=settings.privacy_link_hours)
    )


@router.get("/privacy/{campaign_id}/qr.svg")
async def privacy_qr(campaign_id: uuid.UUID, session: Session, settings: SettingsDep) -> Response:
    """A QR code to the notice, to print on door leaflets."""
    svg = await privacy.qr_svg(session, campaign_id, settings.base_url)
    return Response(svg, media_type="image/svg+xml")


@router.post("/privacy/{campaign_id}/objection", response_class=HTMLResponse)
async def privacy_objection(
    request: Request,
    background: BackgroundTasks,
    campaign_id: uuid.UUID,
    session: Session,
    db: DatabaseDep,
    settings: SettingsDep,
    kind: Annotated[str, Form()] = "objection",
    address: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """The form: an address (never knock on this door again: at once), or an e-mail with
    ``withdrawal``, ``export`` or ``erasure`` (done once confirmed from the link sent to it)."""
    client = client_address(request)
    await privacy.throttle(db, client)
    answer = await privacy_form.public_request(
        session, settings, campaign_id, kind=kind, address=address, email=email, client=client
    )
    if answer.mail is not None:  # sent after the answer: the mail server never shows in it
        background.add_task(privacy_form.deliver, db, settings, answer.mail)
    return HTMLResponse(answer.html)


@router.get("/privacy/{campaign_id}/confirm", response_class=HTMLResponse)
async def privacy_confirm_page(
    campaign_id: uuid.UUID, session: Session, settings: SettingsDep
) -> HTMLResponse:
    """The page of the e-mailed link (the code is in the link's fragment, never sent here)."""
    return HTMLResponse(await privacy_form.confirm_page(session, settings, campaign_id))


@router.post("/privacy/{campaign_id}/confirm")
async def privacy_confirm(
    request: Request,
    campaign_id: uuid.UUID,
    session: Session,
    db: DatabaseDep,
    settings: SettingsDep,
    code: Annotated[str, Form()] = "",
) -> Response:
    """Carry out a withdrawal, export (a JSON file) or erasure once; 404 for an unknown, used or
    expired code (nothing changed)."""
    client = client_address(request)
    await privacy.throttle(db, client)
    done = await privacy_form.confirm(session, settings, campaign_id, code, client)
    if done.export is not None:
        return json_as(
            done.export,
            "application/json",
            headers={
                "Content-Disposition": f'attachment; filename="my-data-{campaign_id}.json"',
                "Cache-Control": "no-store",
            },
        )
    return HTMLResponse(done.html, status_code=200 if done.valid else 404)


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
    ctx: CampaignScope, request_id: uuid.UUID, body: PrivacyRequestResolve | None = None
) -> dict:
    """Close a pending objection: flag the door picked by the admin (or none); forget the text."""
    return await privacy.resolve_request(ctx, request_id, body.address_id if body else None)


@router.get("/campaigns/{campaign_id}/door-objections")
async def list_door_objections(
    ctx: CampaignScope,
    origin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: Literal["active", "reverted", "all"] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Door objections sent on the public form, newest first, with the networks that sent the
    most (admin; audited)."""
    return await door_objections.list_objections(
        ctx, origin=origin, since=since, until=until, status=status, limit=limit, offset=offset
    )


@router.post("/campaigns/{campaign_id}/door-objections/revert")
async def revert_door_objections(ctx: CampaignScope, body: DoorObjectionRevert) -> dict:
    """Undo form objections in bulk: ``{"ids": [...]}`` and/or ``{"origin", "since", "until"}``;
    only flags the form created are removed (admin; audited)."""
    return await door_objections.revert(ctx, body)
