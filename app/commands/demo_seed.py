"""The demo campaign "Démo 92-13" with one account per role (demo mode only, never production).

Re-running it is safe: the accounts get the new password again (and lose any second factor, so
that the printed password works), the campaign and its data are kept.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.authz import ADMIN, ORGANISER, ROLES
from app.credentials import hash_password, token_hash
from app.i18n import _

DEMO_NAME = "Démo 92-13"
# The demo's side: a real nuance of the sample's results, chosen only because it ran in every
# election of the sample (so the side's score, closeness and swing all count). A campaign picks
# its own (GET /elections/{id}/sides, then PUT /campaigns/{id}/weights {"side": ...}).
DEMO_SIDE = "ENS"
DEMO_DOMAIN = "demo.local"
# The last municipal elections were held on 15 and 22 March 2026; councils sit for six years, so
# the next ones fall in March 2032. Their exact date is only set by decree about a year before;
# the first round is assumed on Sunday 14 March 2032 (2026 and 2020 also voted mid-March).
NEXT_MUNICIPAL_ELECTION = date(2032, 3, 14)
INVITE_LABEL = "Démo : lien bénévole"


def demo_accounts() -> dict[str, str]:
    """Role -> e-mail of the demo accounts."""
    return {role: f"{role}@{DEMO_DOMAIN}" for role in ROLES}


async def create_demo_campaign_async(
    engine: AsyncEngine, password: str, *, secret_key: str | None = None
) -> dict[str, Any]:
    """Create or refresh the demo campaign and accounts (owner connection)."""
    from app.services.access.campaigns import one_month_after

    pw_hash = hash_password(password)
    accounts = demo_accounts()
    async with engine.begin() as conn:
        user_ids = {}
        for role, email in accounts.items():
            user_ids[role] = (
                await conn.execute(
                    text(
                        "INSERT INTO app_user (email, password_hash, can_create_campaigns) "
                        "VALUES (:e, :h, :cc) "
                        "ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
                        " is_active = true, totp_enabled = false, totp_secret_enc = NULL,"
                        " totp_key_id = NULL, can_create_campaigns = EXCLUDED.can_create_campaigns "
                        "RETURNING id"
                    ),
                    # The demo's admin may create campaigns of its own, to try that too.
                    {"e": email, "h": pw_hash, "cc": role == ADMIN},
                )
            ).scalar_one()
        cid = (
            await conn.execute(
                text("SELECT id FROM campaign WHERE name = :n ORDER BY created_at LIMIT 1"),
                {"n": DEMO_NAME},
            )
        ).scalar()
        created = cid is None
        if created:
            cid = (
                await conn.execute(
                    text(
                        "INSERT INTO campaign (name, election_date, visit_retention_date, "
                        "created_by, side) VALUES (:n, :d, :r, :u, :s) RETURNING id"
                    ),
                    {
                        "s": DEMO_SIDE,
                        "n": DEMO_NAME,
                        "d": NEXT_MUNICIPAL_ELECTION,
                        "r": one_month_after(NEXT_MUNICIPAL_ELECTION),
                        "u": user_ids[ADMIN],
                    },
                )
            ).scalar_one()
            await _demo_territory(conn, cid, user_ids["admin"])
        for role, uid in user_ids.items():
            await conn.execute(
                text(
                    "INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r) "
                    "ON CONFLICT (campaign_id, user_id) DO UPDATE SET role = EXCLUDED.role"
                ),
                {"c": cid, "u": uid, "r": role},
            )
        invite_path = (
            await _demo_invite(conn, cid, user_ids[ORGANISER], secret_key) if secret_key else None
        )
    return {
        "name": DEMO_NAME,
        "campaign_id": str(cid),
        "created": created,
        "election_date": NEXT_MUNICIPAL_ELECTION.isoformat(),
        "accounts": list(accounts.values()),
        "roles": accounts,
        "invite_path": invite_path,
    }


async def _demo_invite(conn: Any, cid: uuid.UUID, organiser: uuid.UUID, secret_key: str) -> str:
    """The path of the demo's invite link: the same invite while it is valid for a day more (its
    token derives from the secret key), else a new one for a week."""
    inv = (
        await conn.execute(
            text(
                "SELECT id, token_hash FROM invite WHERE campaign_id = :c AND label = :l "
                "AND revoked_at IS NULL AND expires_at > now() + interval '1 day' "
                "ORDER BY created_at DESC LIMIT 1"
            ),
            {"c": cid, "l": INVITE_LABEL},
        )
    ).first()
    if inv is not None and token_hash(invite_token_for(secret_key, cid, inv.id)) == (
        inv.token_hash
    ):
        inv_id = inv.id
    else:
        inv_id = uuid.uuid4()
        await conn.execute(
            text(
                "INSERT INTO invite (campaign_id, id, token_hash, label, created_by, "
                "expires_at) VALUES (:c, :i, :h, :l, :u, :e)"
            ),
            {
                "c": cid,
                "i": inv_id,
                "l": INVITE_LABEL,
                "u": organiser,
                "h": token_hash(invite_token_for(secret_key, cid, inv_id)),
                "e": datetime.now(UTC) + timedelta(days=7),
            },
        )
    return f"/m/#invite={invite_token_for(secret_key, cid, inv_id)}"


async def _demo_territory(conn: Any, cid: uuid.UUID, admin: uuid.UUID) -> None:
    """The demo campaign covers the sample's constituency, 92-13 (the whole country otherwise)."""
    from app.errors import InvalidInput
    from app.services.access import territory

    try:
        chosen = await territory.validate(conn, "constituency", ["92-13"])
    except InvalidInput:
        return  # the sample's constituency file is not loaded: keep the whole country
    await territory.save(conn, cid, admin, chosen)


def invite_token_for(secret_key: str, campaign_id: uuid.UUID, invite_id: uuid.UUID) -> str:
    """The invite token the service would derive with this secret key."""
    from types import SimpleNamespace

    from app.services.access.invites import invite_token

    return invite_token(SimpleNamespace(secret_key=secret_key), campaign_id, invite_id)  # type: ignore[arg-type]


def create_demo_campaign(owner_url: str, password: str) -> dict[str, Any]:
    """Create or refresh "Démo 92-13" and its four accounts; refuses in production mode."""
    from app.config import get_settings
    from app.db import _asyncpg, make_engine

    settings = get_settings()
    if settings.mode == "production":
        raise RuntimeError(_("The demo creates known accounts: it never runs in production mode."))

    async def _run() -> dict[str, Any]:
        engine = make_engine(_asyncpg(owner_url))
        try:
            return await create_demo_campaign_async(
                engine, password, secret_key=settings.secret_key
            )
        finally:
            await engine.dispose()

    return asyncio.run(_run())
