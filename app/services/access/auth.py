"""Sign-in, refresh-token rotation, TOTP second factor.

Failed attempts are throttled (``throttle.py``: counted before the password or code is checked,
limits per account and address held across workers and servers); a correct sign-in deletes the
failures of its (account, address) pair, its own attempt included; the right password without
the second-factor code is not counted either. Turning two-factor sign-in on or off
(``totp_switch``) and changing one's password are throttled the same way.

Every access token carries the account's token version (``app_user.token_version``, see
migration 0015): logout bumps it, and a new password, two-factor turned off or a disabled account
bump it by trigger, so those end every access token at its next request. A refresh chain ends
``PORTE_SESSION_MAX_DAYS`` after its sign-in, however often it is refreshed.

TOTP secrets are stored encrypted with the data keys (``app.services.access.crypto``), bound to the
account by the associated data, and shown only once, in the enrolment answer.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import segno
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.credentials import (
    DUMMY_HASH,
    access_token,
    hash_password_async,
    token_hash,
    verify_password_async,
)
from app.db import Database, set_tenant
from app.errors import Conflict, InvalidInput, Unauthorized
from app.i18n import N_, _
from app.services.access.crypto import TOTP_COLUMN, Cipher, DecryptionFailed, KeyError_, account_aad
from app.services.access.throttle import (
    NO_ADDRESS,
    account_key,
    forget_old_failures,
    release_attempt,
    reserve_attempt,
    totp_key,
)

log = logging.getLogger("porte.auth")

BAD_CREDENTIALS = N_(
    "Wrong e-mail or password."
)  # the same answer whether or not the account exists
TOTP_ISSUER = "Porte-à-porte"
MIN_PASSWORD = 10


@dataclass(frozen=True)
class TokenPair:
    """What a successful sign-in or refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int


# ---------------------------------------------------------------- tokens
async def issue_tokens(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    mfa: bool,
    family_id: uuid.UUID | None = None,
    started_at: datetime | None = None,
) -> TokenPair:
    """A new access token (with the account's current token version) and refresh token.

    ``family_id`` and ``started_at`` continue a refresh chain; without them a new sign-in starts
    one. A refresh token expires after ``refresh_token_days`` unused, and never later than
    ``session_max_days`` after its chain's sign-in."""
    now = datetime.now(UTC)
    started_at = started_at or now
    version = (
        await session.execute(
            text("SELECT token_version FROM app_user WHERE id = :u"), {"u": user_id}
        )
    ).scalar_one()
    refresh = secrets.token_urlsafe(32)
    await session.execute(
        text(
            "INSERT INTO refresh_token (family_id, user_id, token_hash, mfa, expires_at, "
            "session_started_at) VALUES (:f, :u, :h, :m, :e, :s)"
        ),
        {
            "f": family_id or uuid.uuid4(),
            "u": user_id,
            "h": token_hash(refresh),
            "m": mfa,
            "e": min(
                now + timedelta(days=settings.refresh_token_days),
                started_at + timedelta(days=settings.session_max_days),
            ),
            "s": started_at,
        },
    )
    return TokenPair(
        access_token=access_token(settings, user_id, version=version, mfa=mfa),
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
    )


def _cipher(settings: Settings) -> Cipher:
    """The data keys, or a 500 that says two-factor sign-in needs them."""
    try:
        return Cipher.from_settings(settings)
    except KeyError_ as exc:
        raise KeyError_(
            _("Two-factor sign-in keeps its secrets encrypted with the data keys.")
            + " "
            + exc.detail
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
    ok = await verify_password_async(password, user.password_hash if user else DUMMY_HASH)
    if not (ok and user is not None and user.is_active):
        await forget_old_failures(db)
        raise Unauthorized(_(BAD_CREDENTIALS))
    step = None
    if user.totp_enabled:
        code = (totp or "").strip()
        if not code:
            await release_attempt(db, attempt)  # the right password: not a failure
            raise Unauthorized(
                _("Enter the 6-digit code of your authenticator app (form field 'totp')."),
                extra={"totp_required": True},
            )
        secret = _open_secret(settings, user.id, user.totp_secret_enc, user.totp_key_id)
        step = _totp_step(secret, code, user.totp_last_step)
        if step is None:
            await forget_old_failures(db)
            raise Unauthorized(_("Wrong or already used code."), extra={"totp_required": True})
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
                raise Unauthorized(_("Wrong or already used code."), extra={"totp_required": True})
        await session.execute(
            text("DELETE FROM auth_failure WHERE account_key = :k AND client = :c"),
            {"k": key, "c": client or NO_ADDRESS},
        )
        return await issue_tokens(session, settings, user_id=user.id, mfa=user.totp_enabled)


async def refresh(db: Database, settings: Settings, *, token: str) -> TokenPair:
    """Rotate a refresh token. Presenting an already-rotated one revokes its whole family."""
    invalid = Unauthorized(_("This refresh token is not valid any more: sign in again."))
    reused_family = None
    async with db.transaction() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.id, r.family_id, r.user_id, r.mfa, r.expires_at, r.rotated_at, "
                    "r.revoked_at, r.session_started_at, u.is_active FROM refresh_token r "
                    "JOIN app_user u ON u.id = r.user_id WHERE r.token_hash = :h "
                    "FOR UPDATE OF r"
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
        elif row.session_started_at + timedelta(days=settings.session_max_days) <= datetime.now(
            UTC
        ):
            raise Unauthorized(
                _(
                    "This sign-in began more than {days} days ago and has ended: sign in again."
                ).format(days=settings.session_max_days)
            )
        else:
            await session.execute(
                text("UPDATE refresh_token SET rotated_at = now() WHERE id = :i"), {"i": row.id}
            )
            return await issue_tokens(
                session,
                settings,
                user_id=row.user_id,
                mfa=row.mfa,
                family_id=row.family_id,
                started_at=row.session_started_at,
            )
    if reused_family is not None:
        raise Unauthorized(
            _(
                "This refresh token was already used: every session of this sign-in is now ended. "
                "Sign in again."
            )
        )
    raise invalid


async def logout(db: Database, *, token: str) -> None:
    """End a sign-in: revoke the family of this refresh token, and end every access token of
    the account at once (its token version moves on; the account's other sign-ins get new
    access tokens at their next refresh). No answer about whether the token existed."""
    async with db.transaction() as session:
        row = (
            await session.execute(
                text("SELECT family_id, user_id FROM refresh_token WHERE token_hash = :h"),
                {"h": token_hash(token)},
            )
        ).first()
        if row is None:
            return
        await session.execute(
            text(
                "UPDATE refresh_token SET revoked_at = now() WHERE revoked_at IS NULL AND "
                "family_id = :f"
            ),
            {"f": row.family_id},
        )
        await end_access_tokens(session, row.user_id)


async def end_access_tokens(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every access token of the account stops working at its next request."""
    await session.execute(
        text("UPDATE app_user SET token_version = token_version + 1 WHERE id = :u"),
        {"u": user_id},
    )


async def change_password(
    db: Database,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    current: str,
    new: str,
    client: str | None,
    mfa: bool = False,
) -> TokenPair:
    """Set a new password (the current one is required, and throttled like sign-in).

    Every sign-in of the account ends (trigger ``app_user_sign_ins_end``); the answer is a new
    sign-in for the caller."""
    if len(new) < MIN_PASSWORD:
        raise InvalidInput(
            _("Use at least {n} characters.").format(n=MIN_PASSWORD), field="new_password"
        )
    if new == current:
        raise InvalidInput(_("The new password is the current one."), field="new_password")
    async with db.transaction() as session:
        await set_tenant(session, None, user_id)
        user = (
            await session.execute(
                text("SELECT email, password_hash, totp_enabled FROM app_user WHERE id = :u"),
                {"u": user_id},
            )
        ).one()
        key = account_key(settings, user.email)
        attempt = await reserve_attempt(session, settings, key=key, client=client)
    if not await verify_password_async(current, user.password_hash):
        await forget_old_failures(db)
        raise InvalidInput(_("This is not your current password."), field="current_password")
    new_hash = await hash_password_async(new)  # outside any transaction: it takes a while
    async with db.transaction() as session:
        await set_tenant(session, None, user_id)
        await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})
        await session.execute(
            text("UPDATE app_user SET password_hash = :h WHERE id = :u"),
            {"h": new_hash, "u": user_id},
        )
        # The session that changed it goes on as a new sign-in (with the second factor it had).
        return await issue_tokens(session, settings, user_id=user_id, mfa=mfa)


# ---------------------------------------------------------------- account, TOTP
async def me(session: AsyncSession, *, user_id: uuid.UUID, mfa: bool) -> dict:
    """The signed-in account."""
    row = (
        await session.execute(
            text(
                "SELECT id, email, display_name, totp_enabled, can_create_campaigns, "
                "server_admin FROM app_user WHERE id = :u"
            ),
            {"u": user_id},
        )
    ).one()
    return {**row._mapping, "mfa": mfa}


async def set_display_name(
    session: AsyncSession, *, user_id: uuid.UUID, display_name: str | None, mfa: bool
) -> dict:
    """Set (or clear) the name organisers see beside the account's e-mail."""
    await session.execute(
        text("UPDATE app_user SET display_name = :n WHERE id = :u"),
        {"n": display_name, "u": user_id},
    )
    return await me(session, user_id=user_id, mfa=mfa)


async def totp_enrol(session: AsyncSession, settings: Settings, *, user_id: uuid.UUID) -> dict:
    """Store a new (not yet active) TOTP secret, encrypted, and return it (the only time it is
    shown) for the authenticator app."""
    row = (
        await session.execute(
            text("SELECT email, totp_enabled FROM app_user WHERE id = :u"), {"u": user_id}
        )
    ).one()
    if row.totp_enabled:
        raise Conflict(_("Two-factor sign-in is already on. Turn it off first to change devices."))
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
        raise Conflict(_("No authenticator enrolled: call POST /auth/totp/enrol first."))
    secret = _open_secret(settings, user_id, row.totp_secret_enc, row.totp_key_id)
    step = _totp_step(secret, code, row.totp_last_step)
    if step is None:
        raise InvalidInput(_("Wrong or already used code."), field="code")
    await session.execute(
        text("UPDATE app_user SET totp_last_step = :s WHERE id = :u"), {"s": step, "u": user_id}
    )


async def totp_switch(
    db: Database,
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    code: str,
    client: str | None,
    on: bool,
) -> None:
    """Turn two-factor sign-in on once the first code from the app checks out, or off (needs a
    current code). Turning it off ends every sign-in of the account, this one included (trigger
    ``app_user_sign_ins_end``: refresh tokens revoked, token version bumped).

    The code is checked like sign-in checks a password: the attempt is counted (in its own,
    committed transaction) before the check, and un-counted in the request's when it is right,
    so a stolen session cannot try the million codes to turn two-factor off."""
    async with db.transaction() as counting:
        attempt = await reserve_attempt(
            counting, settings, key=totp_key(settings, user_id), client=client
        )
    await _check_code(session, settings, user_id, code)
    await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})
    switch = (
        "totp_enabled = true"
        if on
        else "totp_enabled = false, totp_secret_enc = NULL, totp_key_id = NULL"
    )
    await session.execute(text(f"UPDATE app_user SET {switch} WHERE id = :u"), {"u": user_id})
