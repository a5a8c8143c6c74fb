"""Sign-in, refresh-token rotation, throttling of failed attempts, TOTP second factor.

Failed attempts are kept in PostgreSQL (``auth_failure``) so that the limit holds across workers
and servers. Sign-in counts an attempt *before* checking the password, atomically with the check
of the limit (``reserve_attempt``: a per-account and per-address advisory lock, the count, the
insert, one short transaction): N concurrent wrong passwords cannot all slip under the limit.
A correct sign-in deletes the account's attempts again, its own included.

TOTP secrets are stored encrypted with the data keys (``app.services.access.crypto``), bound to the
account by the associated data, and shown only once, in the enrolment answer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import segno
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database, set_tenant
from app.errors import Conflict, InvalidInput, TooManyRequests, Unauthorized
from app.security import DUMMY_HASH, access_token, token_hash, verify_password
from app.services.access.crypto import TOTP_COLUMN, Cipher, DecryptionFailed, KeyError_, account_aad

log = logging.getLogger("porte.auth")

WINDOW_SECONDS = 60
BAD_CREDENTIALS = "Wrong e-mail or password."  # the same answer whether or not the account exists
TOTP_ISSUER = "Porte-à-porte"


@dataclass(frozen=True)
class TokenPair:
    """What a successful sign-in or refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int


def account_key(settings: Settings, email: str) -> str:
    """Keyed hash of the e-mail typed at sign-in (the throttle never stores e-mails)."""
    return hmac.new(
        settings.secret_key.encode(), b"signin:" + email.encode(), hashlib.sha256
    ).hexdigest()


# One statement: the key's and the address's failures in the window (and the failure whose
# ageing-out lifts a block), and the new attempt recorded only when both are under the limit.
# It runs after ``_LOCKS`` in the same transaction, so concurrent attempts count one by one.
_RESERVE = text(
    """
    WITH a AS (
        SELECT count(*) AS n,
            (SELECT at FROM auth_failure WHERE account_key = :k
               AND at > now() - make_interval(secs => :w) ORDER BY at DESC OFFSET :off LIMIT 1)
            AS pivot
        FROM auth_failure WHERE account_key = :k AND at > now() - make_interval(secs => :w)
    ), c AS (
        SELECT count(*) AS n,
            (SELECT at FROM auth_failure WHERE client = :c
               AND at > now() - make_interval(secs => :w) ORDER BY at DESC OFFSET :off LIMIT 1)
            AS pivot
        FROM auth_failure WHERE client = :c AND at > now() - make_interval(secs => :w)
    ), ins AS (
        INSERT INTO auth_failure (account_key, client)
        SELECT :k, :c FROM a, c WHERE a.n < :lim AND c.n < :lim
        RETURNING id
    )
    SELECT a.n AS a_n, a.pivot AS a_pivot, c.n AS c_n, c.pivot AS c_pivot,
           (SELECT id FROM ins) AS id
    FROM a, c
    """
)
# Account first, then address: every transaction takes them in this order (no deadlock).
_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('porte-signin-account:' || :k, 7)), "
    "pg_advisory_xact_lock(hashtextextended('porte-signin-client:' || :c, 7))"
)


def _too_many(pivots: list[datetime]) -> TooManyRequests:
    wait = max(
        max(1, math.ceil(WINDOW_SECONDS - (datetime.now(UTC) - p).total_seconds())) for p in pivots
    )
    return TooManyRequests(
        f"Too many failed attempts. Wait {wait} seconds before trying again.", retry_after=wait
    )


async def reserve_attempt(
    session: AsyncSession, settings: Settings, *, key: str | None, client: str | None
) -> int:
    """Count one attempt as a failure if the account and the address are under the limit, else
    raise 429. Atomic per account and address; returns the attempt's id (see ``release_attempt``).
    """
    # pg_advisory_xact_lock is strict: a NULL key or address takes no lock (and counts nothing).
    await session.execute(_LOCKS, {"k": key, "c": client})
    limit = settings.login_failures_per_minute
    row = (
        await session.execute(
            _RESERVE, {"k": key, "c": client, "w": WINDOW_SECONDS, "off": limit - 1, "lim": limit}
        )
    ).one()
    if row.id is not None:
        return row.id
    pivots = [
        p
        for n, p in ((row.a_n, row.a_pivot), (row.c_n, row.c_pivot))
        if n >= limit and p is not None
    ]
    raise _too_many(pivots or [datetime.now(UTC) - timedelta(seconds=WINDOW_SECONDS - 1)])


async def release_attempt(db: Database, attempt: int) -> None:
    """Un-count an attempt that turned out not to be a failure (right password, code missing)."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})


async def forget_old_failures(db: Database) -> None:
    """Delete failed attempts older than a day."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM auth_failure WHERE at < now() - interval '1 day'"))


# ---------------------------------------------------------------- tokens
async def _issue(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    mfa: bool,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    refresh = secrets.token_urlsafe(32)
    await session.execute(
        text(
            "INSERT INTO refresh_token (family_id, user_id, token_hash, mfa, expires_at) "
            "VALUES (:f, :u, :h, :m, :e)"
        ),
        {
            "f": family_id or uuid.uuid4(),
            "u": user_id,
            "h": token_hash(refresh),
            "m": mfa,
            "e": datetime.now(UTC) + timedelta(days=settings.refresh_token_days),
        },
    )
    return TokenPair(
        access_token=access_token(settings, user_id, mfa=mfa),
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
    )


def _cipher(settings: Settings) -> Cipher:
    """The data keys, or a 500 that says two-factor sign-in needs them."""
    try:
        return Cipher.from_settings(settings)
    except KeyError_ as exc:
        raise KeyError_(
            "Two-factor sign-in keeps its secrets encrypted with the data keys. " + exc.detail
        ) from None


def _seal_secret(settings: Settings, user_id: uuid.UUID, secret: str) -> tuple[bytes, str]:
    """The secret encrypted for this account, and the id of the key used."""
    cipher = _cipher(settings)
    return cipher.encrypt(secret, ad=account_aad(user_id, TOTP_COLUMN)), cipher.current


def _open_secret(
    settings: Settings, user_id: uuid.UUID, blob: bytes | None, key_id: str | None
) -> str | None:
    """The account's TOTP secret, or None (no code can match) when there is none or it does not
    open: a missing key, or a value that belongs to another account."""
    if blob is None or key_id is None:
        return None
    try:
        return _cipher(settings).decrypt(blob, key_id=key_id, ad=account_aad(user_id, TOTP_COLUMN))
    except DecryptionFailed as exc:
        log.warning(
            "The two-factor secret of account %s cannot be decrypted (%s): no code will be "
            "accepted. Check PORTE_DATA_KEYS, or reset it with `porte admin reset-2fa`.",
            user_id,
            exc,
        )
        return None


def _totp_step(user_secret: str | None, code: str, last_step: int | None) -> int | None:
    """The time step ``code`` matches (±1 step of clock drift), unless already used."""
    if not user_secret:
        return None
    totp = pyotp.TOTP(user_secret)
    now = datetime.now(UTC)
    for offset in (0, -1, 1):
        at = now + timedelta(seconds=offset * totp.interval)
        try:
            expected = totp.at(at)
        except (ValueError, TypeError):  # a damaged stored secret: no code can match
            return None
        if hmac.compare_digest(expected.encode(), code.encode()):
            step = totp.timecode(at)
            if last_step is not None and step <= last_step:
                return None  # replayed code
            return step
    return None


async def sign_in(
    db: Database,
    settings: Settings,
    *,
    email: str,
    password: str,
    totp: str | None,
    client: str | None,
) -> TokenPair:
    """Check e-mail, password (and TOTP when enabled); return fresh tokens or raise 401/429."""
    email = email.strip().lower()
    key = account_key(settings, email)
    async with db.transaction() as session:
        # The attempt counts as a failure from here on, unless it turns out right.
        attempt = await reserve_attempt(session, settings, key=key, client=client)
        user = (
            await session.execute(
                text(
                    "SELECT id, password_hash, is_active, totp_enabled, totp_secret_enc, "
                    "totp_key_id, totp_last_step FROM app_user WHERE email = :e"
                ),
                {"e": email},
            )
        ).first()
    # Verify even for unknown accounts, so that timing says nothing either.
    ok = verify_password(password, user.password_hash if user else DUMMY_HASH)
    if not (ok and user is not None and user.is_active):
        await forget_old_failures(db)
        raise Unauthorized(BAD_CREDENTIALS)
    step = None
    if user.totp_enabled:
        code = (totp or "").strip()
        if not code:
            await release_attempt(db, attempt)  # the right password: not a failure
            raise Unauthorized(
                "Enter the 6-digit code of your authenticator app (form field 'totp').",
                extra={"totp_required": True},
            )
        secret = _open_secret(settings, user.id, user.totp_secret_enc, user.totp_key_id)
        step = _totp_step(secret, code, user.totp_last_step)
        if step is None:
            await forget_old_failures(db)
            raise Unauthorized("Wrong or already used code.", extra={"totp_required": True})
    async with db.transaction() as session:
        await set_tenant(session, None, user.id)
        if step is not None:
            used = await session.execute(
                text(
                    "UPDATE app_user SET totp_last_step = :s WHERE id = :u "
                    "AND (totp_last_step IS NULL OR totp_last_step < :s)"
                ),
                {"s": step, "u": user.id},
            )
            if used.rowcount != 1:  # the same code raced in twice
                raise Unauthorized("Wrong or already used code.", extra={"totp_required": True})
        await session.execute(text("DELETE FROM auth_failure WHERE account_key = :k"), {"k": key})
        return await _issue(session, settings, user_id=user.id, mfa=user.totp_enabled)


async def refresh(db: Database, settings: Settings, *, token: str) -> TokenPair:
    """Rotate a refresh token. Presenting an already-rotated one revokes its whole family."""
    invalid = Unauthorized("This refresh token is not valid any more: sign in again.")
    reused_family = None
    async with db.transaction() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.id, r.family_id, r.user_id, r.mfa, r.expires_at, r.rotated_at, "
                    "r.revoked_at, u.is_active FROM refresh_token r JOIN app_user u "
                    "ON u.id = r.user_id WHERE r.token_hash = :h FOR UPDATE OF r"
                ),
                {"h": token_hash(token)},
            )
        ).first()
        if row is None or row.revoked_at is not None:
            raise invalid
        if row.rotated_at is not None:
            # Reuse: someone else holds a copy. Revoke the chain (committed below) and refuse.
            await session.execute(
                text(
                    "UPDATE refresh_token SET revoked_at = now() "
                    "WHERE family_id = :f AND revoked_at IS NULL"
                ),
                {"f": row.family_id},
            )
            reused_family = row.family_id
        elif row.expires_at <= datetime.now(UTC) or not row.is_active:
            raise invalid
        else:
            await session.execute(
                text("UPDATE refresh_token SET rotated_at = now() WHERE id = :i"), {"i": row.id}
            )
            return await _issue(
                session, settings, user_id=row.user_id, mfa=row.mfa, family_id=row.family_id
            )
    if reused_family is not None:
        raise Unauthorized(
            "This refresh token was already used: every session of this sign-in is now ended. "
            "Sign in again."
        )
    raise invalid


async def logout(db: Database, *, token: str) -> None:
    """Revoke the family of this refresh token (no answer about whether it existed)."""
    async with db.transaction() as session:
        await session.execute(
            text(
                "UPDATE refresh_token SET revoked_at = now() WHERE revoked_at IS NULL AND "
                "family_id = (SELECT family_id FROM refresh_token WHERE token_hash = :h)"
            ),
            {"h": token_hash(token)},
        )


# ---------------------------------------------------------------- account, TOTP
async def me(session: AsyncSession, *, user_id: uuid.UUID, mfa: bool) -> dict:
    """The signed-in account."""
    row = (
        await session.execute(
            text("SELECT id, email, totp_enabled FROM app_user WHERE id = :u"), {"u": user_id}
        )
    ).one()
    return {**row._mapping, "mfa": mfa}


async def totp_enrol(session: AsyncSession, settings: Settings, *, user_id: uuid.UUID) -> dict:
    """Store a new (not yet active) TOTP secret, encrypted, and return it (the only time it is
    shown) for the authenticator app."""
    row = (
        await session.execute(
            text("SELECT email, totp_enabled FROM app_user WHERE id = :u"), {"u": user_id}
        )
    ).one()
    if row.totp_enabled:
        raise Conflict("Two-factor sign-in is already on. Turn it off first to change devices.")
    secret = pyotp.random_base32()
    blob, key_id = _seal_secret(settings, user_id, secret)
    await session.execute(
        text(
            "UPDATE app_user SET totp_secret_enc = :b, totp_key_id = :k, totp_last_step = NULL "
            "WHERE id = :u"
        ),
        {"b": blob, "k": key_id, "u": user_id},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=row.email, issuer_name=TOTP_ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": svg}


async def _check_code(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str
) -> None:
    row = (
        await session.execute(
            text(
                "SELECT totp_secret_enc, totp_key_id, totp_last_step FROM app_user "
                "WHERE id = :u FOR UPDATE"
            ),
            {"u": user_id},
        )
    ).one()
    if row.totp_secret_enc is None:
        raise Conflict("No authenticator enrolled: call POST /auth/totp/enrol first.")
    secret = _open_secret(settings, user_id, row.totp_secret_enc, row.totp_key_id)
    step = _totp_step(secret, code, row.totp_last_step)
    if step is None:
        raise InvalidInput("Wrong or already used code.", field="code")
    await session.execute(
        text("UPDATE app_user SET totp_last_step = :s WHERE id = :u"), {"s": step, "u": user_id}
    )


async def totp_confirm(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, code: str
) -> None:
    """Turn two-factor sign-in on once the first code from the app checks out."""
    await _check_code(session, settings, user_id, code)
    await session.execute(
        text("UPDATE app_user SET totp_enabled = true WHERE id = :u"), {"u": user_id}
    )


async def totp_disable(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, code: str
) -> None:
    """Turn two-factor sign-in off (needs a current code); ends every refresh chain."""
    await _check_code(session, settings, user_id, code)
    await session.execute(
        text(
            "UPDATE app_user SET totp_enabled = false, totp_secret_enc = NULL, totp_key_id = NULL "
            "WHERE id = :u"
        ),
        {"u": user_id},
    )
    await session.execute(
        text(
            "UPDATE refresh_token SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"
        ),
        {"u": user_id},
    )
