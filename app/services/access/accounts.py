"""Accounts and their server-level rights, for server admins (no campaign data here).

A server admin may list accounts and give or take the right to create campaigns. Making a server
admin happens only on the server (`porte admin create|rights --server-admin`): the service's
database role cannot set that column (trigger in migration 0016).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.i18n import _

log = logging.getLogger("porte.access")
_COLUMNS = "id, email, is_active, can_create_campaigns, server_admin, created_at"


async def list_accounts(
    session: AsyncSession, *, email: str | None, limit: int, offset: int
) -> list[dict]:
    """Accounts (optionally those whose e-mail contains ``email``), by e-mail."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM app_user "
            "WHERE (CAST(:q AS text) IS NULL OR strpos(email, lower(:q)) > 0) "
            "ORDER BY email LIMIT :l OFFSET :o"
        ),
        {"q": email, "l": limit, "o": offset},
    )
    return [dict(r._mapping) for r in rows]


async def set_rights(
    session: AsyncSession,
    *,
    admin_id: uuid.UUID,
    user_id: uuid.UUID,
    can_create_campaigns: bool,
) -> dict:
    """Give or take an account's right to create campaigns (logged with the admin's id)."""
    row = (
        await session.execute(
            text(
                f"UPDATE app_user SET can_create_campaigns = :v WHERE id = :u RETURNING {_COLUMNS}"
            ),
            {"v": can_create_campaigns, "u": user_id},
        )
    ).first()
    if row is None:
        raise NotFound(_("No such account."), field="user_id")
    log.info(
        "server admin %s set can_create_campaigns=%s for account %s",
        admin_id,
        can_create_campaigns,
        user_id,
    )
    return dict(row._mapping)
