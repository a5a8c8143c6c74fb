"""Passwords, tokens, the caller (principal), the campaign scope of a request, and audit.

Every campaign route depends on ``CampaignScope``: it resolves the campaign from the path and the
caller's membership (or invite session), answers 404 for any campaign the caller is not part of,
checks the route's roles in ``app.authz.ROUTE_ROLES``, and sets the transaction's tenant so that
row-level security scopes every query.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import PUBLIC, SIGNED_IN, STAFF, rule_for
from app.config import Settings
from app.db import Database, set_tenant
from app.errors import Forbidden, NotFound, Unauthorized

JWT_ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_bearer = HTTPBearer(auto_error=False)


# ---------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    """argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed``."""
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


DUMMY_HASH = hash_password(secrets.token_urlsafe(16))  # equal-time answer for unknown accounts


def token_hash(token: str) -> str:
    """SHA-256 of an opaque token (refresh tokens and invite secrets are stored hashed)."""
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- tokens
def encode_token(settings: Settings, claims: dict[str, Any], ttl: timedelta) -> str:
    """Sign a JWT with the service's secret key (HS256)."""
    now = datetime.now(UTC)
    payload = {"iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(payload, settings.secret_key, algorithm=JWT_ALGORITHM)


def decode_token(settings: Settings, token: str, typ: str) -> dict[str, Any]:
    """Verify signature, algorithm, expiry and type; raise Unauthorized otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Your session has expired: sign in again.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token: sign in again.") from exc
    if claims.get("typ") != typ:
        raise Unauthorized("Invalid token type.")
    return claims


def access_token(settings: Settings, user_id: uuid.UUID, *, mfa: bool = False) -> str:
    """A short-lived access token for one account (``mfa``: signed in with a second factor)."""
    return encode_token(
        settings,
        {"sub": str(user_id), "typ": "access", "mfa": bool(mfa)},
        timedelta(minutes=settings.access_token_minutes),
    )


def invite_session_token(
    settings: Settings, *, invite_id: uuid.UUID, campaign_id: uuid.UUID, expires_at: datetime
) -> str:
    """A session for a volunteer who opened an invite link: no account, scoped to the invite."""
    ttl = max(expires_at - datetime.now(UTC), timedelta(seconds=1))
    return encode_token(
        settings,
        {
            "sub": f"invite:{invite_id}",
            "typ": "invite",
            "inv": str(invite_id),
            "cid": str(campaign_id),
        },
        ttl,
    )


# ---------------------------------------------------------------- principal
@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, or an invite-link session."""

    user_id: uuid.UUID | None = None
    invite_id: uuid.UUID | None = None
    invite_campaign_id: uuid.UUID | None = None
    mfa: bool = False  # the access token was obtained with a TOTP code

    @property
    def is_invite(self) -> bool:
        return self.invite_id is not None


def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and one transaction per request, committed before the response is sent."""
    async with request.app.state.db.transaction() as session:
        yield session


# scope="function": the transaction commits when the route function returns, before the response
# is sent, so "201 created" means stored (the default, "request", would commit after sending).
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_database(request: Request) -> Database:
    """The app's database, for services that commit more than one transaction (sign-in)."""
    return request.app.state.db


def client_address(request: Request) -> str | None:
    """The client's address as the server sees it (behind a proxy: run uvicorn --proxy-headers)."""
    return request.client.host if request.client else None


DatabaseDep = Annotated[Database, Depends(get_database)]


async def optional_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller from the bearer token, or None when anonymous."""
    if creds is None:
        return None
    settings: Settings = request.app.state.settings
    try:
        # Only to pick the expected type; decode_token then verifies signature, algorithm, expiry.
        unverified = jwt.decode(creds.credentials, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token: sign in again.") from exc
    try:
        if unverified.get("typ") == "invite":
            claims = decode_token(settings, creds.credentials, "invite")
            return Principal(
                invite_id=uuid.UUID(claims["inv"]), invite_campaign_id=uuid.UUID(claims["cid"])
            )
        claims = decode_token(settings, creds.credentials, "access")
        return Principal(user_id=uuid.UUID(claims["sub"]), mfa=claims.get("mfa") is True)
    except (KeyError, ValueError, TypeError) as exc:  # signed by us but malformed: refuse anyway
        raise Unauthorized("Invalid token: sign in again.") from exc


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller; 401 when anonymous."""
    if principal is None:
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <token>'.")
    return principal


async def current_user_id(
    principal: Annotated[Principal, Depends(current_principal)], session: Session
) -> uuid.UUID:
    """The signed-in account (invite sessions are refused); the session is scoped to it."""
    if principal.user_id is None:
        raise Forbidden("An invite session cannot do this; sign in with an account.")
    await set_tenant(session, None, principal.user_id)
    active = (
        await session.execute(
            text("SELECT is_active FROM app_user WHERE id = :u"), {"u": principal.user_id}
        )
    ).scalar()
    if not active:
        raise Unauthorized("This account no longer exists or was disabled; ask your admin.")
    return principal.user_id


CurrentUserId = Annotated[uuid.UUID, Depends(current_user_id)]


# ---------------------------------------------------------------- campaign scope
@dataclass
class CampaignContext:
    """A request scoped to one campaign: who, with which role, and the transaction to use."""

    campaign_id: uuid.UUID
    role: str
    principal: Principal
    session: AsyncSession
    k_threshold: int
    election_date: Any
    request_id: str
    client: str | None
    settings: Settings
    assignment_id: uuid.UUID | None = None  # invite sessions scoped to one assignment
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id

    async def audit(
        self,
        action: str,
        *,
        object: str | None = None,
        rows: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record that precise locations or personal data were seen or exported."""
        from app.services.audit import record

        await record(self, action=action, object=object, rows=rows, details=details)


async def campaign_context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: Annotated[Principal, Depends(current_principal)],
    session: Session,
) -> CampaignContext:
    """Resolve the campaign and the caller's role; 404 if not theirs; 403 if role not allowed."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if rule is None or rule in (PUBLIC, SIGNED_IN):
        # Fail closed: a campaign route missing from app.authz.ROUTE_ROLES serves no one.
        raise Forbidden("This route has no authorization rule; nobody may call it.")
    not_found = NotFound("No such campaign, or you are not a member of it.")
    await set_tenant(session, campaign_id, principal.user_id)
    # One query resolves the caller's standing and the campaign's settings (hot path).
    if principal.is_invite:
        if principal.invite_campaign_id != campaign_id:
            raise not_found
        camp = (
            await session.execute(
                text(
                    "SELECT 'volunteer' AS role, i.assignment_id, c.k_threshold, c.election_date, "
                    "c.require_2fa FROM invite i JOIN campaign c ON c.id = i.campaign_id "
                    "WHERE i.campaign_id = :c AND i.id = :i AND i.revoked_at IS NULL "
                    "AND i.expires_at > now()"
                ),
                {"c": campaign_id, "i": principal.invite_id},
            )
        ).first()
        if camp is None:
            raise Unauthorized("This invite link has expired or was revoked; ask your organiser.")
    else:
        camp = (
            await session.execute(
                text(
                    "SELECT m.role, NULL::uuid AS assignment_id, c.k_threshold, c.election_date, "
                    "c.require_2fa FROM membership m JOIN app_user u ON u.id = m.user_id "
                    "JOIN campaign c ON c.id = m.campaign_id "
                    "WHERE m.campaign_id = :c AND m.user_id = :u AND u.is_active"
                ),
                {"c": campaign_id, "u": principal.user_id},
            )
        ).first()
        if camp is None:
            raise not_found
    role, assignment_id = camp.role, camp.assignment_id
    if camp.require_2fa and role in STAFF and not principal.mfa:
        raise Forbidden(
            "This campaign requires two-factor sign-in for admins and organisers: turn it on "
            "(POST /auth/totp/enrol, then /auth/totp/confirm) and sign in again with your code."
        )
    if role not in rule:
        raise Forbidden(f"The {role} role may not do this.")
    return CampaignContext(
        campaign_id=campaign_id,
        role=role,
        principal=principal,
        session=session,
        k_threshold=camp.k_threshold,
        election_date=camp.election_date,
        request_id=getattr(request.state, "request_id", ""),
        client=request.client.host if request.client else None,
        settings=request.app.state.settings,
        assignment_id=assignment_id,
    )


CampaignScope = Annotated[CampaignContext, Depends(campaign_context)]
