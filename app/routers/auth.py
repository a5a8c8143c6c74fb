"""Sign-in (OAuth2 password flow), refresh-token rotation, invite links, TOTP second factor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import OAuth2PasswordRequestForm

from app.schemas import (
    InviteSessionOut,
    InviteTokenIn,
    MeOut,
    MePatch,
    PasswordChangeIn,
    RefreshIn,
    TokenOut,
    TotpCodeIn,
    TotpEnrolOut,
)
from app.security import (
    CurrentPrincipal,
    CurrentUserId,
    DatabaseDep,
    Session,
    SettingsDep,
    client_address,
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

    Five failures a minute from one address, or at one account from one address, answer 429 with
    ``Retry-After``; an account under attack lets each failing address one guess a minute, and
    still lets its owner in from an address without failures. A wrong e-mail and a wrong
    password get the same answer.
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
async def logout(data: RefreshIn, db: DatabaseDep) -> None:
    """End a sign-in: its refresh tokens stop working, and every access token of the account
    at once (other sign-ins of the account get a new one at their next refresh)."""
    await service.logout(db, token=data.refresh_token)


@router.post("/password", response_model=TokenOut)
async def change_password(
    request: Request,
    data: PasswordChangeIn,
    user_id: CurrentUserId,
    principal: CurrentPrincipal,
    db: DatabaseDep,
    settings: SettingsDep,
) -> TokenOut:
    """Change your password (the current one is asked). Every sign-in of the account ends; the
    answer is a new sign-in for this session."""
    pair = await service.change_password(
        db,
        settings,
        user_id=user_id,
        current=data.current_password,
        new=data.new_password,
        client=client_address(request),
        mfa=principal.mfa,
    )
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


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
    principal: CurrentPrincipal,
) -> dict:
    """The signed-in account."""
    return await service.me(session, user_id=user_id, mfa=principal.mfa)


@router.patch("/me", response_model=MeOut)
async def update_me(
    data: MePatch,
    user_id: CurrentUserId,
    session: Session,
    principal: CurrentPrincipal,
) -> dict:
    """Set the name organisers see beside your e-mail (``null`` clears it)."""
    return await service.set_display_name(
        session, user_id=user_id, display_name=data.display_name, mfa=principal.mfa
    )


@router.post("/totp/enrol", response_model=TotpEnrolOut)
async def totp_enrol(user_id: CurrentUserId, session: Session, settings: SettingsDep) -> dict:
    """Start two-factor sign-in: scan the QR code, then confirm with a code.

    The secret is shown in this answer only; it is stored encrypted."""
    return await service.totp_enrol(session, settings, user_id=user_id)


def _totp_switch(
    request: Request,
    data: TotpCodeIn,
    user_id: CurrentUserId,
    session: Session,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Callable[..., Awaitable[None]]:
    """``service.totp_switch`` for the caller and the body's code: called with ``on``."""
    return partial(
        service.totp_switch,
        db,
        session,
        settings,
        user_id=user_id,
        code=data.code,
        client=client_address(request),
    )


TotpSwitch = Annotated[Callable[..., Awaitable[None]], Depends(_totp_switch)]


@router.post("/totp/confirm", status_code=204)
async def totp_confirm(switch: TotpSwitch) -> None:
    """Turn two-factor sign-in on with a first code; sign in again to get a 2FA session.

    Wrong codes are throttled like passwords (429 with ``Retry-After``)."""
    await switch(on=True)


@router.post("/totp/disable", status_code=204)
async def totp_disable(switch: TotpSwitch) -> None:
    """Turn two-factor sign-in off (needs a current code); ends every sign-in of the account,
    this one included. Wrong codes are throttled like passwords."""
    await switch(on=False)
