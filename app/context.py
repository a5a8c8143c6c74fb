"""Who asks, for which campaign: the request context services are called with (no FastAPI).

Routers build it with ``app.security.CampaignScope``; commands build it the same way from the
command line (``app.commands``). Services take a ``CampaignContext`` (or a connection), never a
request or a URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import NotFound


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, or an invite-link session."""

    user_id: uuid.UUID | None = None
    invite_id: uuid.UUID | None = None
    invite_campaign_id: uuid.UUID | None = None
    mfa: bool = False  # the access token was obtained with a TOTP code
    version: int | None = None  # the account's token version when the token was issued

    @property
    def is_invite(self) -> bool:
        return self.invite_id is not None


@dataclass
class CampaignContext:
    """A request scoped to one campaign: who, with which role, and the transaction to use."""

    campaign_id: uuid.UUID
    role: str
    principal: Principal
    session: AsyncSession
    k_threshold: int
    election_date: date | None
    request_id: str
    client: str | None
    settings: Settings
    assignment_id: uuid.UUID | None = None  # invite sessions scoped to one assignment
    extras: dict[str, Any] = field(default_factory=dict)
    doors_version: int = 0  # campaign_change.doors when the request began (door-tile cache)
    conn: Any = None  # hot routes: the asyncpg connection (no session), see hot_campaign_context
    # "replica" when ``session``/``conn`` read the streaming replica (app.replica); writes then
    # go through ``write_session()``, a transaction on the primary opened on first use.
    read_from: str = "primary"
    writer: Callable[[], Awaitable[AsyncSession]] | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id

    async def one(self, sql: str, *, missing: str, field: str, **params: Any) -> Row:
        """The row ``sql`` finds in this campaign (``:c`` is the campaign's id, the other
        parameters are ``params``); none: 404 with ``missing`` for the request's ``field``."""
        row = (await self.session.execute(text(sql), {"c": self.campaign_id, **params})).first()
        if row is None:
            raise NotFound(missing, field=field)
        return row

    async def write_session(self) -> AsyncSession:
        """Where this request writes (audit events...): ``session``, or the primary's session
        when the request reads from the replica."""
        return self.session if self.writer is None else await self.writer()
