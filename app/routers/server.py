"""Server-level administration: accounts and the right to create campaigns (server admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.schemas import AccountRightsOut, AccountRightsPatch
from app.security import ServerRight, Session
from app.services.access import accounts as service

router = APIRouter(tags=["server"])


@router.get("/server/accounts", response_model=list[AccountRightsOut])
async def list_accounts(
    admin_id: ServerRight,
    session: Session,
    email: Annotated[str | None, Query(max_length=254, description="Part of the e-mail")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict]:
    """Accounts of this server with their rights (server admins)."""
    return await service.list_accounts(session, email=email, limit=limit, offset=offset)


@router.patch("/server/accounts/{user_id}", response_model=AccountRightsOut)
async def set_rights(
    user_id: uuid.UUID, data: AccountRightsPatch, admin_id: ServerRight, session: Session
) -> dict:
    """Give or take an account's right to create campaigns (server admins)."""
    return await service.set_rights(
        session, admin_id=admin_id, user_id=user_id, can_create_campaigns=data.can_create_campaigns
    )
