"""Sign-in (OAuth2 password flow), refresh-token rotation, invite links, TOTP second factor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.schemas import (
    InviteSessionOut,
    InviteTokenIn,
    MeOut,
    RefreshIn,
    TokenOut,
    TotpCodeIn,
    TotpEnrolOut,
)
from app.security import (
    CurrentUserId,
    DatabaseDep,
    Principal,
    Session,
    SettingsDep,
    client_address,
    current_principal,
)
from app.services.access import auth as service
from app.services.access import invites as invite_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenOut)
async def sign_in(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    totp: Annotated[str | None, Form(max_length=12, description="TOTP code, when enabled")] = None,
) -> TokenOut:
    """Sign in with e-mail (``username``) and password, plus ``totp`` when two-factor is on.

    Five failures a minute per account or per address answer 429 with ``Retry-After``. A wrong
    e-mail and a wrong password get the same answer.
    """
    pair = await service.sign_in(
        db,
        settings,
        email=form.username,
        password=form.password,
        totp=totp,
        client=client_address(request),
    )
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/refresh", response_model=TokenOut)
async def refresh(data: RefreshIn, db: DatabaseDep, settings: SettingsDep) -> TokenOut:
    """Trade a refresh token for new tokens; a token already used ends the whole sign-in."""
    pair = await service.refresh(db, settings, token=data.refresh_token)
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/logout", status_code=204)
async def logout(data: RefreshIn, db: DatabaseDep) -> Response:
    """End a sign-in: its refresh tokens stop working (access tokens expire within minutes)."""
    await service.logout(db, token=data.refresh_token)
    return Response(status_code=204)


@router.post("/invite", response_model=InviteSessionOut)
async def open_invite(
    request: Request, data: InviteTokenIn, db: DatabaseDep, settings: SettingsDep
) -> dict:
    """Open an invite link: a session limited to its assignment, with no account."""
    return await invite_service.open_invite(
        db,
        settings,
        token=data.token,
        client=client_address(request),
        request_id=getattr(request.state, "request_id", None),
    )


@router.get("/me", response_model=MeOut)
async def me(
    user_id: CurrentUserId,
    session: Session,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict:
    """The signed-in account."""
    return await service.me(session, user_id=user_id, mfa=principal.mfa)


@router.post("/totp/enrol", response_model=TotpEnrolOut)
async def totp_enrol(user_id: CurrentUserId, session: Session, settings: SettingsDep) -> dict:
    """Start two-factor sign-in: scan the QR code, then confirm with a code.

    The secret is shown in this answer only; it is stored encrypted."""
    return await service.totp_enrol(session, settings, user_id=user_id)


@router.post("/totp/confirm", status_code=204)
async def totp_confirm(
    data: TotpCodeIn, user_id: CurrentUserId, session: Session, settings: SettingsDep
) -> Response:
    """Turn two-factor sign-in on with a first code; sign in again to get a 2FA session."""
    await service.totp_confirm(session, settings, user_id=user_id, code=data.code)
    return Response(status_code=204)


@router.post("/totp/disable", status_code=204)
async def totp_disable(
    data: TotpCodeIn, user_id: CurrentUserId, session: Session, settings: SettingsDep
) -> Response:
    """Turn two-factor sign-in off (needs a current code); ends your other sign-ins."""
    await service.totp_disable(session, settings, user_id=user_id, code=data.code)
    return Response(status_code=204)
