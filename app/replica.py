"""Reads that tolerate a few seconds of lag, served by a PostgreSQL streaming replica.

A route declares that it may read from the replica by depending on ``ReplicaScope`` (or
``HotReplicaScope`` for map tiles) instead of ``CampaignScope`` (``app.security``). For such a
request:

- the caller's standing (membership, role, second factor) is read on the **primary**, in a short
  transaction of its own: a member removed a second ago is refused at once, lag or not;
- the route's reads run on the replica, in a transaction whose tenant is set the same way
  (``set_config(..., true)``: allowed on a hot standby), so row-level security scopes them there
  exactly as on the primary;
- what the route writes goes to the primary: ``audit.record`` writes through
  ``ctx.write_session()``, a primary transaction opened on first use and committed before the
  response is sent; anything written through ``ctx.session`` is refused by the standby
  (SQLSTATE 25006) and the whole request is run again on the primary, once (``ReplicaFallback``):
  a cache a read refreshes (ranking) is then written where it belongs, never twice, and nothing
  is half-written anywhere;
- the primary serves instead when no replica is configured, when the replica cannot be reached
  (then it is left alone for ``PORTE_REPLICA_RETRY_S``), when it is not a standby at all (a
  promoted replica must not take writes behind the primary's back), or when its replay lags more
  than ``PORTE_REPLICA_MAX_LAG_S``; a replica that fails in the middle of a request (connection
  lost, a query cancelled by a recovery conflict) has the request run again on the primary.

Lag is measured on the replica, in the same round trip that sets the tenant: 0 when everything
the replica has received is replayed and its WAL receiver is connected; otherwise the time since
the last replayed transaction committed on the primary (``pg_last_xact_replay_timestamp()``), an
upper bound of how stale its data can be. (A standby whose receiver is disconnected counts as
lagging by that measure too: it no longer knows what it is missing.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.dbfaults import _sqlstate, classify
from app.dburl import _asyncpg

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from app.config import Settings

log = logging.getLogger("porte.replica")

# Seconds behind the primary, or NULL when the server is not a standby (see the docstring).
LAG_SQL = """
CASE WHEN NOT pg_is_in_recovery() THEN NULL
     WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
          AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN 0.0
     ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()),
                   'Infinity')::float8
END"""
# The tenant (as app.db.set_tenant) and the lag, in one round trip.
ENTER = text(
    "SELECT set_config('porte.campaign_id', :cid, true), "
    f"set_config('porte.user_id', :uid, true), {LAG_SQL} AS lag"
)
LAG_ONLY = f"SELECT {LAG_SQL}"

# Request state keys (``request.state``, i.e. ``scope["state"]``).
RETRY_KEY = "porte_replica_retry"  # set when the request must run again on the primary
PRIMARY_KEY = "porte_replica_skip"  # set on that second run: the primary serves everything

READ_ONLY = "25006"  # read_only_sql_transaction: a write reached the standby
STATEMENT_TIMEOUT = "57014"  # a slow query: running it again on the primary would not help


class ReplicaRetry(Exception):
    """The replica could not serve this request: run it again on the primary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def failure(exc: BaseException) -> str | None:
    """Why ``exc``, raised while reading the replica, calls for the primary; None if it does not
    (a bad request or a bug fails the same way on the primary: no second run)."""
    state = _sqlstate(exc)
    if state == READ_ONLY:
        return "the request writes (the standby is read-only)"
    if state == STATEMENT_TIMEOUT:
        return None
    down = classify(exc)
    return None if down is None else down.reason


def _disconnected(exc: BaseException) -> bool:
    """Whether the replica itself is gone (not one statement refused)."""
    state = _sqlstate(exc)
    if state is not None:
        return state.startswith(("08", "57P0"))
    return classify(exc) is not None


class Replica:
    """The replica's engine and hot pool, and what this worker knows of its health."""

    def __init__(self, settings: Settings):
        from app.engine import make_engine

        self.settings = settings
        self.url = _asyncpg(settings.replica_url)
        self.max_lag = settings.replica_max_lag_s
        self.engine = make_engine(
            self.url,
            pool_size=settings.db_pool_size,
            statement_timeout_s=settings.export_statement_timeout_s,
            pool_timeout_s=settings.pool_timeout_s,
            application_name="porte-replica",
            connect_timeout_s=settings.replica_connect_timeout_s,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._hot: asyncpg.Pool | None = None
        self._hot_lock = asyncio.Lock()
        self.skip_until = 0.0  # monotonic: the primary serves until then
        self.skip_reason = ""
        self.last_lag: float | None = None
        self._lag_at = float("-inf")  # when last_lag was read (monotonic)

    # ------------------------------------------------------------ health
    def available(self) -> bool:
        """Whether to try the replica now (not failed or lagging a moment ago)."""
        return time.monotonic() >= self.skip_until

    def skip(self, reason: str, seconds: float, *, warn: bool = True) -> None:
        """Serve from the primary for ``seconds`` (one log line when it starts)."""
        if self.available() and warn:
            log.warning("replica not used for %.0f s: %s", seconds, reason)
        self.skip_until = time.monotonic() + seconds
        self.skip_reason = reason

    def judge(self, lag: float | None) -> bool:
        """Whether a replica with this lag may serve; remember the reading."""
        self.last_lag, self._lag_at = lag, time.monotonic()
        if lag is None:
            self.skip(
                "PORTE_REPLICA_URL points at a server that is not a standby (promoted, or the "
                "primary itself); fix the setting",
                self.settings.replica_retry_s,
            )
            return False
        if lag > self.max_lag:
            # Checked again after a short while: lag comes and goes with the primary's load.
            log.info("replica %.1f s behind (bound %.1f s): reading the primary", lag, self.max_lag)
            self.skip(f"{lag:.1f} s behind", self.settings.replica_lag_check_s, warn=False)
            return False
        return True

    def failed(self, exc: BaseException) -> None:
        """The replica failed under a request: leave it alone for a while if it is gone."""
        if _disconnected(exc):
            self.skip(
                f"unreachable ({failure(exc) or type(exc).__name__})",
                self.settings.replica_retry_s,
            )

    def status(self) -> dict[str, Any]:
        """What this worker knows of the replica (for /health; no query)."""
        used = self.available()
        return {
            "status": "in use" if used else "skipped",
            "reason": None if used else self.skip_reason,
            "lag_seconds": None if self.last_lag is None else round(self.last_lag, 3),
            "max_lag_seconds": self.max_lag,
        }

    # ------------------------------------------------------------ connections
    async def hot_pool(self) -> asyncpg.Pool:
        """The replica's asyncpg pool for map tiles, opened on first use."""
        if self._hot is None:
            async with self._hot_lock:
                if self._hot is None:
                    size = max(2, self.settings.db_pool_size // 2)
                    self._hot = await asyncpg.create_pool(
                        self.url.replace("postgresql+asyncpg://", "postgresql://", 1),
                        min_size=1,
                        max_size=size,
                        timeout=self.settings.replica_connect_timeout_s,
                        server_settings={
                            "jit": "off",
                            "application_name": "porte-replica-hot",
                            "statement_timeout": str(
                                int(self.settings.tile_statement_timeout_s * 1000)
                            ),
                        },
                    )
        return self._hot

    async def dispose(self) -> None:
        if self._hot is not None:
            await self._hot.close()
            self._hot = None
        await self.engine.dispose()

    async def read_session(
        self, stack: AsyncExitStack, campaign_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> AsyncSession | None:
        """A replica transaction scoped to the tenant (closed with ``stack``), or None when the
        replica may not serve now (unreachable, not a standby, lagging)."""
        if not self.available():
            return None
        inner = AsyncExitStack()
        try:
            session = await inner.enter_async_context(self.sessionmaker())
            await inner.enter_async_context(session.begin())
            binds = {"cid": str(campaign_id), "uid": str(user_id) if user_id else ""}
            lag = (await session.execute(ENTER, binds)).one().lag
        except Exception as exc:
            await _close_quietly(inner, exc)
            if failure(exc) is None and not isinstance(exc, OSError | asyncio.TimeoutError):
                raise
            self.skip(f"unreachable ({failure(exc) or exc})", self.settings.replica_retry_s)
            return None
        if not self.judge(lag):
            await inner.aclose()
            return None
        stack.push_async_exit(inner)
        return session

    async def hot_connection(self, stack: AsyncExitStack) -> asyncpg.Connection | None:
        """A replica connection for map tiles (released with ``stack``), or None (see
        ``read_session``). The lag reading is reused for ``PORTE_REPLICA_LAG_CHECK_S``."""
        if not self.available():
            return None
        try:
            pool = await self.hot_pool()
            conn = await stack.enter_async_context(
                pool.acquire(timeout=self.settings.replica_connect_timeout_s)
            )
            stale = time.monotonic() - self._lag_at > self.settings.replica_lag_check_s
            if stale and not self.judge(await conn.fetchval(LAG_ONLY)):
                return None
        except Exception as exc:
            if failure(exc) is None and not isinstance(exc, OSError | asyncio.TimeoutError):
                raise
            self.skip(f"unreachable ({failure(exc) or exc})", self.settings.replica_retry_s)
            return None
        return conn


async def _close_quietly(stack: AsyncExitStack, exc: BaseException) -> None:
    with contextlib.suppress(Exception):  # the connection is gone: nothing to roll back
        await stack.__aexit__(type(exc), exc, exc.__traceback__)


def _again(reason: str) -> None:
    log.info("served by the primary: %s", reason)


class ReplicaFallback:
    """ASGI middleware: a GET the replica could not serve runs again, once, on the primary.

    The replica scope raises ``ReplicaRetry``; its handler (``retry_response``) marks the request
    and answers 503. This middleware drops that answer before anything is sent and runs the
    request again with the replica skipped. Without this middleware the client gets the 503
    (with Retry-After): safe, never a half-written answer.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        dropped = False

        async def guarded(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start" and state.get(RETRY_KEY):
                dropped = True
                return
            await send(message)

        await self.app(scope, receive, guarded)
        if not dropped:
            return
        reason = state.pop(RETRY_KEY)
        _again(reason)
        state[PRIMARY_KEY] = reason

        async def no_body() -> Message:  # a GET has no body; the first run may have read it
            return {"type": "http.request", "body": b"", "more_body": False}

        await self.app(scope, no_body, send)


async def retry_response(request: Any, exc: ReplicaRetry) -> Any:
    """Handler of ``ReplicaRetry``: mark the request for ``ReplicaFallback``; 503 otherwise."""
    from app.errors import problem
    from app.i18n import _

    setattr(request.state, RETRY_KEY, exc.reason)
    resp = problem(
        503,
        _("Service unavailable"),
        _("The read replica could not answer; try again (nothing was changed)."),
        request,
        retry_after=1,
    )
    resp.headers["Retry-After"] = "1"
    return resp
