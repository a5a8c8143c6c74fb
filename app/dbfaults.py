"""When the database is unavailable rather than the request wrong: 503 with Retry-After, not 500.

A stopped or restarting PostgreSQL (connection refused, "shutting down", "starting up", a standby
in recovery), a full connection pool, a statement that ran past its timeout: none is the caller's
fault and none loses anything stored, so the answer is ``503 Service Unavailable`` with a
``Retry-After`` the phone's queue honours, and the log gets one line, not a traceback.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.i18n import N_, _

# SQLSTATEs that mean "not now" rather than "never": connection exceptions (class 08), operator
# intervention (57P01-57P03: shutdown, crash, starting up), cancelled by statement_timeout
# (57014), too many connections (53300), out of disk space / memory (53100, 53200: the admin must
# act, but the request itself was fine), a read-only standby (25006), serialization and deadlock
# (40001, 40P01: retrying the same request succeeds).
_RETRY_SOON = {"57014": 2, "40001": 1, "40P01": 1, "53300": 5}
_OUTAGE_PREFIXES = ("08", "57P0")
_OUTAGE = {"53100", "53200", "25006"}
DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL's "no space left on device" (SQLSTATE 53100)."""
    return _sqlstate(exc) == DISK_FULL


def disk_full_advice() -> str:
    """What a person does about a full database disk (commands and imports)."""
    from app.i18n import _

    return _(
        "The database server has no disk space left. What was stored before is intact: this "
        "run was rolled back. Free space on the database's disk (or the tablespace of the "
        "tables named in the error), then run the same command again."
    )


@dataclass(frozen=True)
class Unavailable:
    """Why the database cannot serve now, and when to try again."""

    reason: str  # for the log, in English
    retry_after: int
    text: str = ""  # for people: an English message marked for the catalogue, {values} filled
    values: dict[str, str] = field(default_factory=dict)

    def said(self) -> str:
        """The reason in the language of the request or command."""
        return _(self.text).format(**self.values) if self.text else self.reason


def _sqlstate(exc: BaseException) -> str | None:
    for err in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        if err is None:
            continue
        for candidate in (err, getattr(err, "driver_exception", None)):
            state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if state:
                return str(state)
    return None


def classify(exc: BaseException) -> Unavailable | None:
    """``Unavailable`` when ``exc`` means the database cannot serve now; None otherwise."""
    import asyncpg
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.TimeoutError):  # no connection free in the pool in time
        return Unavailable(
            "connection pool exhausted", 2, N_("every connection to the database is busy")
        )
    state = _sqlstate(exc)
    if state in _RETRY_SOON:
        reason, text = {
            "57014": ("statement timeout", N_("a query took too long")),
            "40001": ("serialization conflict", N_("two changes crossed each other")),
            "40P01": ("deadlock", N_("two changes crossed each other")),
            "53300": ("too many connections", N_("too many connections to the database")),
        }[state]
        return Unavailable(reason, _RETRY_SOON[state], text)
    if state == DISK_FULL:
        return Unavailable("database out of disk space", 30, N_("the database's disk is full"))
    if state and (state.startswith(_OUTAGE_PREFIXES) or state in _OUTAGE):
        return Unavailable(
            f"database unavailable (SQLSTATE {state})",
            5,
            N_("database unavailable (SQLSTATE {state})"),
            {"state": state},
        )
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:  # the driver's error may be wrapped twice
        seen.add(id(err))
        if isinstance(err, ConnectionError | OSError | asyncio.TimeoutError):
            name = type(err).__name__
            return Unavailable(
                f"database unreachable ({name})",
                5,
                N_("database unreachable ({error})"),
                {"error": name},
            )
        if isinstance(err, asyncpg.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError):
            name = type(err).__name__
            return Unavailable(
                f"database connection lost ({name})",
                5,
                N_("database connection lost ({error})"),
                {"error": name},
            )
        if isinstance(err, sa.DBAPIError) and err.connection_invalidated:
            return Unavailable("database connection lost", 5, N_("database connection lost"))
        err = getattr(err, "orig", None) or err.__cause__ or err.__context__
    return None
