"""Credentials, with no web framework: argon2id password hashes (off the event loop, two at a time),
hashes of opaque tokens, and the service's JWTs (access tokens, invite sessions).

``app.security`` re-exports them next to the FastAPI dependencies that check them; services and
commands import them from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings
from app.errors import Unauthorized
from app.i18n import _

JWT_ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


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

# argon2id takes ~0.2 s and 64 MiB per call: run it in worker threads (the C code releases the
# GIL, so the event loop keeps serving meanwhile), at most two at a time per process.
_ARGON2_SLOTS = threading.BoundedSemaphore(2)


def _slotted(fn, *args):
    with _ARGON2_SLOTS:
        return fn(*args)


async def verify_password_async(password: str, hashed: str) -> bool:
    """``verify_password`` off the event loop."""
    return await asyncio.to_thread(_slotted, verify_password, password, hashed)


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop."""
    return await asyncio.to_thread(_slotted, hash_password, password)


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
        raise Unauthorized(_("Your session has expired: sign in again.")) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(_("Invalid token: sign in again.")) from exc
    if claims.get("typ") != typ:
        raise Unauthorized(_("Invalid token type."))
    return claims


def access_token(settings: Settings, user_id: uuid.UUID, *, version: int, mfa: bool = False) -> str:
    """A short-lived access token for one account (``mfa``: signed in with a second factor).

    ``version`` is the account's token version (``app_user.token_version``): the token works
    only while it is current (logout, a new password, two-factor turned off bump it)."""
    return encode_token(
        settings,
        {"sub": str(user_id), "typ": "access", "mfa": bool(mfa), "ver": int(version)},
        timedelta(minutes=settings.access_token_minutes),
    )


def session_ended() -> Unauthorized:
    """The answer to a token whose sign-in has ended (its account's token version moved on)."""
    return Unauthorized(
        _(
            "Your session has ended (signed out, new password, two-factor sign-in turned off or "
            "account disabled): sign in again."
        )
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
