"""Throttling of failed attempts: passwords, second-factor codes, invite links.

Failed attempts are kept in PostgreSQL (``auth_failure``) so that the limits hold across workers
and servers. An attempt is counted *before* the password (or code) is checked, atomically with
the check of the limits (``reserve_attempt``: per-account and per-address advisory locks, the
counts, the insert, one short transaction): N concurrent wrong passwords cannot all slip under.

The limits (``PORTE_LOGIN_FAILURES_PER_MINUTE`` each, default 5 a minute):

- per (account, address): one address guessing one account;
- per address: one address spraying many accounts;
- per account, but only against addresses that already failed on it: when an account is under
  attack, each address gets one guess a minute at it, while an address that has not failed on it
  (its owner, at home) is still let in with the right password and code. Five wrong passwords
  typed by someone else therefore never lock the owner out.

Sign-in (``auth.py``), invite links and member invitations call ``reserve_attempt`` before the
check and ``release_attempt`` (or a delete in the request's transaction) when it succeeds.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.errors import TooManyRequests
from app.i18n import _

WINDOW_SECONDS = 60
NO_ADDRESS = "unknown"  # requests without a client address share one throttle bucket


def account_key(settings: Settings, email: str) -> str:
    """Keyed hash of the e-mail typed at sign-in (the throttle never stores e-mails)."""
    return hmac.new(
        settings.secret_key.encode(), b"signin:" + email.encode(), hashlib.sha256
    ).hexdigest()


def totp_key(settings: Settings, user_id: uuid.UUID) -> str:
    """Throttle key of an account's second-factor codes (turning two-factor on or off)."""
    return hmac.new(
        settings.secret_key.encode(), b"totp:" + str(user_id).encode(), hashlib.sha256
    ).hexdigest()


# One statement: the failures in the window of the pair (key, address), of the key and of the
# address (with, for each, the failure whose ageing-out lifts a block), and the new attempt
# recorded only when every limit allows it. It runs after ``_LOCKS`` in the same transaction,
# so concurrent attempts count one by one.
_RESERVE = text(
    """
    WITH recent AS (
        SELECT at, account_key, client FROM auth_failure
        WHERE (account_key = :k OR client = :c) AND at > now() - make_interval(secs => :w)
    ), p AS (
        SELECT count(*) AS n, max(at) AS last,
            (SELECT at FROM recent WHERE account_key = :k AND client = :c
               ORDER BY at DESC OFFSET :off LIMIT 1) AS pivot
        FROM recent WHERE account_key = :k AND client = :c
    ), a AS (
        SELECT count(*) AS n,
            (SELECT at FROM recent WHERE account_key = :k ORDER BY at DESC OFFSET :off LIMIT 1)
            AS pivot
        FROM recent WHERE account_key = :k
    ), c AS (
        SELECT count(*) AS n,
            (SELECT at FROM recent WHERE client = :c ORDER BY at DESC OFFSET :off LIMIT 1)
            AS pivot
        FROM recent WHERE client = :c
    ), ins AS (
        INSERT INTO auth_failure (account_key, client)
        SELECT :k, :c FROM p, a, c
        WHERE p.n < :lim AND c.n < :lim AND NOT (a.n >= :lim AND p.n > 0)
        RETURNING id
    )
    SELECT p.n AS p_n, p.last AS p_last, p.pivot AS p_pivot, a.n AS a_n, a.pivot AS a_pivot,
           c.n AS c_n, c.pivot AS c_pivot, (SELECT id FROM ins) AS id
    FROM p, a, c
    """
)
# Account first, then address: every transaction takes them in this order (no deadlock).
_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('porte-signin-account:' || :k, 7)), "
    "pg_advisory_xact_lock(hashtextextended('porte-signin-client:' || :c, 7))"
)


def _wait(at: datetime) -> int:
    """Seconds until a failure recorded ``at`` leaves the window (at least 1)."""
    return max(1, math.ceil(WINDOW_SECONDS - (datetime.now(UTC) - at).total_seconds()))


def _too_many(wait: int) -> TooManyRequests:
    return TooManyRequests(
        _("Too many failed attempts. Wait {wait} seconds before trying again.").format(wait=wait),
        retry_after=wait,
    )


async def reserve_attempt(
    session: AsyncSession, settings: Settings, *, key: str | None, client: str | None
) -> int:
    """Count one attempt as a failure if the limits allow it, else raise 429.

    Limits per (key, address), per address, and per key against addresses that already failed
    on it (see the module's docstring). Atomic per key and address; returns the attempt's id
    (see ``release_attempt``). ``key`` None (invite links) counts the address alone.
    """
    client = client or NO_ADDRESS
    # pg_advisory_xact_lock is strict: a NULL key takes no lock (and counts nothing).
    await session.execute(_LOCKS, {"k": key, "c": client})
    limit = settings.login_failures_per_minute
    row = (
        await session.execute(
            _RESERVE, {"k": key, "c": client, "w": WINDOW_SECONDS, "off": limit - 1, "lim": limit}
        )
    ).one()
    if row.id is not None:
        return row.id
    waits = []
    if row.c_n >= limit and row.c_pivot is not None:
        waits.append(_wait(row.c_pivot))
    if row.p_n >= limit and row.p_pivot is not None:
        waits.append(_wait(row.p_pivot))
    if row.a_n >= limit and row.p_n > 0:
        # Lifted when the account's count falls under the limit or this address's last failure
        # on it ages out, whichever comes first.
        candidates = [_wait(t) for t in (row.a_pivot, row.p_last) if t is not None]
        if candidates:
            waits.append(min(candidates))
    raise _too_many(max(waits) if waits else WINDOW_SECONDS)


async def release_attempt(db: Database, attempt: int) -> None:
    """Un-count an attempt that turned out not to be a failure (right password, code missing)."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM auth_failure WHERE id = :i"), {"i": attempt})


async def forget_old_failures(db: Database) -> None:
    """Delete failed attempts older than a day."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM auth_failure WHERE at < now() - interval '1 day'"))
