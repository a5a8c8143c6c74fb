"""The FastAPI dependencies that resolve who calls and for which campaign.

The caller (``Principal``, from ``app.context``, out of a token checked with ``app.credentials``,
re-exported here), the request's session and settings, the campaign scope.

Every campaign route depends on ``CampaignScope``: it resolves the campaign from the path and the
caller's membership (or invite session), answers 404 for any campaign the caller is not part of,
checks the route's roles in ``app.authz.ROUTE_ROLES``, and sets the transaction's tenant so that
row-level security scopes every query.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import (
    CAMPAIGN_CREATOR,
    SERVER_ADMIN,
    SERVER_RIGHTS,
    STAFF,
    rule_for,
)
from app.config import Settings
from app.context import CampaignContext, Principal
from app.credentials import (  # noqa: F401  (re-exported: app.security's import surface)
    DUMMY_HASH,
    JWT_ALGORITHM,
    access_token,
    decode_token,
    encode_token,
    hash_password,
    hash_password_async,
    invite_session_token,
    session_ended,
    token_hash,
    verify_password,
    verify_password_async,
)
from app.db import Database, set_tenant
from app.errors import Forbidden, NotFound, Unauthorized
from app.i18n import _, role_name

_bearer = HTTPBearer(auto_error=False)


# ---------------------------------------------------------------- principal
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
    """The client's address as the server sees it. Behind a reverse proxy, run
    ``porte serve --proxy-headers --forwarded-allow-ips <proxy>``: uvicorn then puts the real
    client (X-Forwarded-For, from the trusted proxy only) here, for throttling and the audit."""
    return request.client.host if request.client else None


DatabaseDep = Annotated[Database, Depends(get_database)]


_VERIFIED_MAX = 4096  # verified bearer tokens remembered per app (a map pans with one token)


def _principal_from(settings: Settings, token: str) -> tuple[Principal, float]:
    """Verify a bearer token; the caller and the token's expiry (epoch seconds)."""
    try:
        # Only to pick the expected type; decode_token then verifies signature, algorithm, expiry.
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized(_("Invalid token: sign in again.")) from exc
    try:
        if unverified.get("typ") == "invite":
            claims = decode_token(settings, token, "invite")
            principal = Principal(
                invite_id=uuid.UUID(claims["inv"]), invite_campaign_id=uuid.UUID(claims["cid"])
            )
        else:
            claims = decode_token(settings, token, "access")
            version = claims["ver"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise TypeError("ver")
            principal = Principal(
                user_id=uuid.UUID(claims["sub"]), mfa=claims.get("mfa") is True, version=version
            )
        return principal, float(claims["exp"])
    except (KeyError, ValueError, TypeError) as exc:  # signed by us but malformed: refuse anyway
        raise Unauthorized(_("Invalid token: sign in again.")) from exc


async def optional_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller from the bearer token, or None when anonymous.

    A token that verified once is remembered until it expires (tokens are signed and immutable:
    the same string always verifies to the same caller), which spares the signature check on the
    hundreds of tile requests a map makes. Whether the caller still belongs to the campaign is
    checked in the database on every request, not here.
    """
    if creds is None:
        return None
    token = creds.credentials
    verified: dict[str, tuple[Principal, float]] = request.app.state.verified_tokens
    known = verified.get(token)
    if known is not None and known[1] > time.time():
        return known[0]
    principal, expires = _principal_from(request.app.state.settings, token)
    if len(verified) >= _VERIFIED_MAX:
        verified.clear()
    verified[token] = (principal, expires)
    return principal


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller; 401 when anonymous."""
    if principal is None:
        raise Unauthorized(_("Sign in first: send 'Authorization: Bearer <token>'."))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_user_id(principal: CurrentPrincipal, session: Session) -> uuid.UUID:
    """The signed-in account (invite sessions are refused); the session is scoped to it.

    The token's version must be the account's current one: logout, a new password or two-factor
    turned off end every access token at its next request."""
    if principal.user_id is None:
        raise Forbidden(_("An invite session cannot do this; sign in with an account."))
    await set_tenant(session, None, principal.user_id)
    row = (
        await session.execute(
            text("SELECT is_active, token_version FROM app_user WHERE id = :u"),
            {"u": principal.user_id},
        )
    ).first()
    if row is None or not row.is_active:
        raise Unauthorized(_("This account no longer exists or was disabled; ask your admin."))
    if row.token_version != principal.version:
        raise session_ended()
    return principal.user_id


CurrentUserId = Annotated[uuid.UUID, Depends(current_user_id)]


async def server_right(request: Request, user_id: CurrentUserId, session: Session) -> uuid.UUID:
    """The signed-in account, when it holds the server-level right the route needs
    (``app.authz``: SERVER_ADMIN or CAMPAIGN_CREATOR); 403 otherwise, and for routes missing
    from the table (fail closed)."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if rule not in SERVER_RIGHTS:
        raise Forbidden(_("This route has no authorization rule; nobody may call it."))
    row = (
        await session.execute(
            text("SELECT can_create_campaigns, server_admin FROM app_user WHERE id = :u"),
            {"u": user_id},
        )
    ).one()
    if rule == SERVER_ADMIN and not row.server_admin:
        raise Forbidden(_("Only a server admin may do this."))
    if rule == CAMPAIGN_CREATOR and not (row.can_create_campaigns or row.server_admin):
        raise Forbidden(
            _(
                "Your account may not create campaigns. A server admin can give it the right, or "
                "it is given on the server: `porte admin rights EMAIL --can-create-campaigns`."
            )
        )
    return user_id


ServerRight = Annotated[uuid.UUID, Depends(server_right)]


# ---------------------------------------------------------------- campaign scope
__all__ = ["CampaignContext", "Principal"]  # re-exported for the routers

# The caller's standing in a campaign and the transaction's tenant, in one round trip
# (function in alembic/versions/0015_session_versions.py): the account's token version is
# checked there too, so a signed-out token is refused where the membership is read.
STANDING_SQL = "SELECT * FROM porte_enter($1, $2, $3, $4)"
STANDING_TEXT = text("SELECT * FROM porte_enter(:c, :u, :i, :v)")  # the same, SQLAlchemy binds


def standing_binds(campaign_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """The binds of ``STANDING_TEXT`` for this caller."""
    return {
        "c": campaign_id,
        "u": principal.user_id,
        "i": principal.invite_id,
        "v": principal.version,
    }


def route_rule(request: Request) -> frozenset[str]:
    """The roles allowed on this campaign route (app.authz); refuse routes missing from it."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if not isinstance(rule, frozenset):
        # Fail closed: a campaign route missing from app.authz.ROUTE_ROLES (or given an
        # account-level rule) serves no one.
        raise Forbidden(_("This route has no authorization rule; nobody may call it."))
    return rule


def check_standing(
    principal: Principal, campaign_id: uuid.UUID, rule: frozenset[str], standing: Any
) -> None:
    """Refuse a caller whose standing (a ``porte_enter`` row, or None) does not allow the route.

    404 for a campaign the caller is not part of (existence does not leak), 401 for an expired or
    revoked invite or an ended sign-in, 403 for a role outside the route's rule or a missing
    second factor.
    """
    if standing is not None and standing["session_ended"]:
        raise session_ended()
    if standing is None:
        if principal.is_invite and principal.invite_campaign_id == campaign_id:
            raise Unauthorized(
                _("This invite link has expired or was revoked; ask your organiser.")
            )
        raise NotFound(_("No such campaign, or you are not a member of it."))
    role = standing["role"]
    if standing["require_2fa"] and role in STAFF and not principal.mfa:
        raise Forbidden(
            _(
                "This campaign requires two-factor sign-in for admins and organisers: turn it "
                "on (POST /auth/totp/enrol, then /auth/totp/confirm) and sign in again with your "
                "code."
            )
        )
    if role not in rule:
        raise Forbidden(_("The {role} role may not do this.").format(role=role_name(role)))


def _context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: Principal,
    standing: Any,
    session: AsyncSession | None,
) -> CampaignContext:
    return CampaignContext(
        campaign_id=campaign_id,
        role=standing["role"],
        principal=principal,
        session=session,  # type: ignore[arg-type]
        k_threshold=standing["k_threshold"],
        election_date=standing["election_date"],
        request_id=getattr(request.state, "request_id", ""),
        client=request.client.host if request.client else None,
        settings=request.app.state.settings,
        assignment_id=standing["assignment_id"],
        doors_version=standing["doors_version"],
    )


async def campaign_context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: Session,
) -> CampaignContext:
    """Resolve the campaign and the caller's role; 404 if not theirs; 403 if role not allowed.

    ``porte_enter`` sets the transaction's tenant and reads the standing in one round trip.
    """
    rule = route_rule(request)
    if principal.is_invite and principal.invite_campaign_id != campaign_id:
        raise NotFound(_("No such campaign, or you are not a member of it."))
    standing = (
        (
            await session.execute(
                STANDING_TEXT,
                {
                    "c": campaign_id,
                    "u": principal.user_id,
                    "i": principal.invite_id,
                    "v": principal.version,
                },
            )
        )
        .mappings()
        .first()
    )
    check_standing(principal, campaign_id, rule, standing)
    return _context(request, campaign_id, principal, standing, session)


CampaignScope = Annotated[CampaignContext, Depends(campaign_context)]


async def hot_campaign_context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
) -> AsyncIterator[CampaignContext]:
    """``campaign_context`` for the map tiles: same rules and answers, plain asyncpg.

    The standing is read outside any transaction (one round trip); work that reads campaign
    tables opens its tenant transaction with ``app.db.tenant_transaction(ctx)``. The context has
    no SQLAlchemy session: ``ctx.conn`` is the connection, held until the route returns.
    """
    rule = route_rule(request)
    if principal.is_invite and principal.invite_campaign_id != campaign_id:
        raise NotFound(_("No such campaign, or you are not a member of it."))
    pool = await request.app.state.db.hot_pool()
    async with pool.acquire(timeout=request.app.state.settings.pool_timeout_s) as conn:
        standing = await conn.fetchrow(
            STANDING_SQL, campaign_id, principal.user_id, principal.invite_id, principal.version
        )
        check_standing(principal, campaign_id, rule, standing)
        ctx = _context(request, campaign_id, principal, standing, None)
        ctx.conn = conn
        yield ctx


# Released when the route function returns, before the response is sent.
HotCampaignScope = Annotated[CampaignContext, Depends(hot_campaign_context, scope="function")]


# ---------------------------------------------------------------- lag-tolerant reads (replica)
def _may_use_replica(request: Request) -> Any:
    """The replica, when one is configured and this request has not been sent back to the
    primary (``app.replica.ReplicaFallback``)."""
    from app.replica import PRIMARY_KEY

    if request.scope.get("state", {}).get(PRIMARY_KEY):
        return None
    return request.app.state.db.replica


async def _standing_on_primary(
    request: Request, campaign_id: uuid.UUID, principal: Principal
) -> Any:
    """The caller's standing read on the primary, in a short transaction of its own."""
    async with request.app.state.db.transaction() as primary:
        return (
            (await primary.execute(STANDING_TEXT, standing_binds(campaign_id, principal)))
            .mappings()
            .first()
        )


def _retry_on_primary(replica: Any, exc: Exception) -> None:
    """Turn a failure of the replica under a request into ``ReplicaRetry`` (run it again on the
    primary); other errors go on as they are."""
    from app.replica import ReplicaRetry, failure

    reason = failure(exc)
    if reason is None:
        return
    replica.failed(exc)
    raise ReplicaRetry(reason) from exc


async def replica_campaign_context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
) -> AsyncIterator[CampaignContext]:
    """``campaign_context`` for reads that tolerate a few seconds of lag (app.replica).

    Same rules and answers. The standing is read on the primary; ``ctx.session`` reads the
    replica (tenant set, row-level security as on the primary) and ``ctx.write_session()`` writes
    on the primary. Without a usable replica this is ``campaign_context`` on the primary.
    """
    rule = route_rule(request)
    if principal.is_invite and principal.invite_campaign_id != campaign_id:
        raise NotFound(_("No such campaign, or you are not a member of it."))
    db: Database = request.app.state.db
    replica = _may_use_replica(request)
    async with AsyncExitStack() as stack:
        session = None
        if replica is not None:
            session = await replica.read_session(stack, campaign_id, principal.user_id)
        if session is None:  # the primary serves everything, in one transaction
            primary = await stack.enter_async_context(db.transaction())
            standing = (
                (await primary.execute(STANDING_TEXT, standing_binds(campaign_id, principal)))
                .mappings()
                .first()
            )
            check_standing(principal, campaign_id, rule, standing)
            yield _context(request, campaign_id, principal, standing, primary)
            return
        standing = await _standing_on_primary(request, campaign_id, principal)
        check_standing(principal, campaign_id, rule, standing)
        ctx = _context(request, campaign_id, principal, standing, session)
        ctx.read_from = "replica"
        writer: list[AsyncSession] = []

        async def write_session() -> AsyncSession:
            if not writer:
                primary = await stack.enter_async_context(db.transaction())
                await set_tenant(primary, campaign_id, principal.user_id)
                writer.append(primary)
            return writer[0]

        ctx.writer = write_session
        try:
            yield ctx
        except Exception as exc:
            _retry_on_primary(replica, exc)
            raise


# hot_campaign_context as a context manager (the route's exception is thrown into it, so its
# connection goes back to the pool at once).
_hot_primary = asynccontextmanager(hot_campaign_context)


async def replica_hot_campaign_context(
    request: Request,
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
) -> AsyncIterator[CampaignContext]:
    """``hot_campaign_context`` for map tiles that tolerate lag: ``ctx.conn`` is a replica
    connection (the route opens its tenant transaction on it as usual); the standing is read on
    the primary. Without a usable replica this is ``hot_campaign_context``."""
    rule = route_rule(request)
    if principal.is_invite and principal.invite_campaign_id != campaign_id:
        raise NotFound(_("No such campaign, or you are not a member of it."))
    replica = _may_use_replica(request)
    async with AsyncExitStack() as stack:
        conn = None if replica is None else await replica.hot_connection(stack)
        if conn is None:
            async with _hot_primary(request, campaign_id, principal) as ctx:
                yield ctx
            return
        settings = request.app.state.settings
        pool = await request.app.state.db.hot_pool()
        async with pool.acquire(timeout=settings.pool_timeout_s) as primary:
            standing = await primary.fetchrow(
                STANDING_SQL, campaign_id, principal.user_id, principal.invite_id, principal.version
            )
        check_standing(principal, campaign_id, rule, standing)
        ctx = _context(request, campaign_id, principal, standing, None)
        ctx.conn = conn
        ctx.read_from = "replica"
        try:
            yield ctx
        except Exception as exc:
            _retry_on_primary(replica, exc)
            raise


# Routes whose reads tolerate a few seconds of lag (ranking, exports, OGC, district tiles,
# analyst aggregates) take these instead of CampaignScope / HotCampaignScope: docs/scale.md.
ReplicaScope = Annotated[CampaignContext, Depends(replica_campaign_context, scope="function")]
HotReplicaScope = Annotated[
    CampaignContext, Depends(replica_hot_campaign_context, scope="function")
]
SCOPE_DEPENDENCIES = (
    campaign_context,
    hot_campaign_context,
    replica_campaign_context,
    replica_hot_campaign_context,
)
