"""Builders for test data, written straight to the database as the owner (fast, no HTTP)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.authz import ROLES
from app.config import Settings
from app.security import access_token, hash_password

PASSWORD = "correct horse battery staple"
_PW_HASH = hash_password(PASSWORD)


async def make_user(
    engine: AsyncEngine,
    email: str | None = None,
    *,
    can_create_campaigns: bool = False,
    server_admin: bool = False,
) -> uuid.UUID:
    """An account whose password is ``PASSWORD`` (with these server-level rights)."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.test"
    async with engine.begin() as conn:
        return (
            await conn.execute(
                text(
                    "INSERT INTO app_user (email, password_hash, can_create_campaigns, "
                    "server_admin) VALUES (:e, :h, :c, :s) RETURNING id"
                ),
                {"e": email.lower(), "h": _PW_HASH, "c": can_create_campaigns, "s": server_admin},
            )
        ).scalar_one()


async def make_campaign(
    engine: AsyncEngine,
    *,
    members: dict[uuid.UUID, str],
    name: str | None = None,
    election_date: date = date(2026, 3, 15),
    k: int = 11,
) -> uuid.UUID:
    """A campaign with these members (user id -> role)."""
    async with engine.begin() as conn:
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO campaign (name, election_date, k_threshold) VALUES (:n, :d, :k) "
                    "RETURNING id"
                ),
                {"n": name or f"Campaign {uuid.uuid4().hex[:6]}", "d": election_date, "k": k},
            )
        ).scalar_one()
        for uid, role in members.items():
            await conn.execute(
                text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r)"),
                {"c": cid, "u": uid, "r": role},
            )
    return cid


@dataclass
class World:
    """One campaign, one account per role, and their auth headers."""

    campaign_id: uuid.UUID
    users: dict[str, uuid.UUID]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        return f"/campaigns/{self.campaign_id}{path}"


def bearer(settings: Settings, user_id: uuid.UUID) -> dict[str, str]:
    """Authorization header for an account."""
    return {"Authorization": f"Bearer {access_token(settings, user_id, version=0)}"}


async def make_world(engine: AsyncEngine, settings: Settings, *, k: int = 11) -> World:
    """A campaign with admin, organiser, analyst and volunteer accounts."""
    users = {role: await make_user(engine) for role in ROLES}
    cid = await make_campaign(engine, members={uid: r for r, uid in users.items()}, k=k)
    return World(cid, users, {r: bearer(settings, uid) for r, uid in users.items()})


async def make_invite(
    engine: AsyncEngine,
    settings: Settings,
    campaign_id: uuid.UUID,
    *,
    expires_in: timedelta = timedelta(days=1),
    revoked: bool = False,
    assignment_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, dict[str, str]]:
    """An invite row and the header of a session opened with it (JWT valid for a day even when
    the invite itself has expired, so that the per-request recheck is what refuses it)."""
    from app.security import invite_session_token, token_hash
    from app.services.access.invites import invite_token

    invite_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO invite (campaign_id, id, token_hash, assignment_id, created_at, "
                "expires_at, revoked_at) VALUES (:c, :i, :h, :a, :ca, :e, :r)"
            ),
            {
                "c": campaign_id,
                "i": invite_id,
                "a": assignment_id,
                "h": token_hash(invite_token(settings, campaign_id, invite_id)),
                "ca": min(now, now + expires_in) - timedelta(minutes=1),
                "e": now + expires_in,
                "r": now if revoked else None,
            },
        )
    jwt_ = invite_session_token(
        settings, invite_id=invite_id, campaign_id=campaign_id, expires_at=now + timedelta(days=1)
    )
    return invite_id, {"Authorization": f"Bearer {jwt_}"}
