"""Database access: async engines, one transaction per request, the tenant (campaign) context.

Row-level security keys every campaign table on ``porte.campaign_id``, a per-transaction setting
(``set_config(..., true)`` is ``SET LOCAL``). ``set_tenant`` must run inside the transaction that
reads or writes campaign data; the ``CampaignScope`` dependency in ``app.security`` does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from app.config import Settings
from app.dburl import CLIENT_CHECK_MS, _asyncpg, resolve_urls  # noqa: F401 (re-exported)
from app.engine import make_engine  # noqa: F401 (re-exported: app.db.make_engine)

if TYPE_CHECKING:
    from app.replica import Replica

# What a service that runs SQL takes when it needs no campaign context: a session (a request's,
# or a command's) or a connection (``async with engine.begin() as conn``).
Executor = AsyncSession | AsyncConnection


@asynccontextmanager
async def owner_engine(
    settings: Settings, *, pool_size: int = 1, statement_timeout_s: float | None = None
) -> AsyncIterator[AsyncEngine]:
    """The schema owner's engine, for the commands and maintenance work (migrations aside): the
    one way to reach the database as the owner. The URL is the settings' owner URL, else the
    private cluster's (``resolve_urls``); the pool and connect waits are the settings'; the
    engine is disposed on leaving. Services receive the engine (or a connection of it), never a
    URL. The owner bypasses row-level security: never serve a request with it."""
    engine = make_engine(
        resolve_urls(settings)[1],
        pool_size=pool_size,
        statement_timeout_s=statement_timeout_s,
        pool_timeout_s=settings.pool_timeout_s,
        application_name="porte-owner",
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def statement_timeout(conn: AsyncSession | AsyncConnection, seconds: float) -> None:
    """Give the rest of this transaction's statements ``seconds`` each (exports, imports)."""
    await conn.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"),
        {"ms": str(int(seconds * 1000))},
    )


class _HotConnection(asyncpg.Connection):
    """A connection of the hot-path pool.

    Hot paths change nothing but transaction-local settings (``porte_enter``), and asyncpg always
    ends a transaction left open when a connection goes back to the pool, so the reset query it
    would send on every release (a round trip) has nothing to reset.
    """

    def get_reset_query(self) -> str:
        return ""


class Database:
    """The service's engine and session factory (created once per app), and the hot-path pool.

    Most routes use SQLAlchemy sessions. The map tiles, served by the hundred while someone pans
    a map, use plain asyncpg connections from ``hot_pool()``: one round trip for the caller's
    standing, no ORM work (see ``app.security.hot_campaign_context``).
    """

    def __init__(self, settings: Settings, *, replica: Replica | None = None):
        self.url, self.owner_url = resolve_urls(settings)
        self.settings = settings
        self.engine = make_engine(
            self.url,
            pool_size=settings.db_pool_size,
            statement_timeout_s=settings.statement_timeout_s,
            pool_timeout_s=settings.pool_timeout_s,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._hot_size = max(2, settings.db_pool_size // 2)
        self._hot: asyncpg.Pool | None = None
        self._hot_lock = asyncio.Lock()
        # Reads that tolerate lag may go to a streaming replica (app.replica, docs/scale.md),
        # given by the app when PORTE_REPLICA_URL is set (app.replica builds on this module).
        self.replica = replica

    async def hot_pool(self) -> asyncpg.Pool:
        """The asyncpg pool of the hot paths, opened on first use."""
        if self._hot is None:
            async with self._hot_lock:
                if self._hot is None:
                    self._hot = await asyncpg.create_pool(
                        self.url.replace("postgresql+asyncpg://", "postgresql://", 1),
                        min_size=self._hot_size,
                        max_size=self._hot_size,
                        connection_class=_HotConnection,
                        timeout=self.settings.pool_timeout_s,
                        server_settings={
                            "jit": "off",
                            "application_name": "porte-hot",
                            "client_connection_check_interval": CLIENT_CHECK_MS,
                            "statement_timeout": str(
                                int(self.settings.tile_statement_timeout_s * 1000)
                            ),
                        },
                    )
        return self._hot

    async def dispose(self) -> None:
        if self.replica is not None:
            await self.replica.dispose()
        if self._hot is not None:
            await self._hot.close()
            self._hot = None
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session


CUSTOM_PLAN_FROM = 20  # array binds from this many values get custom plans (see custom_plans)


@asynccontextmanager
async def custom_plans(
    conn: AsyncSession | AsyncConnection, when: bool = True
) -> AsyncIterator[None]:
    """Plan the statements run inside for their actual binds, not with a generic plan.

    After five runs of a prepared statement on a connection PostgreSQL may switch to a generic
    plan; for statements bound to arrays of hundreds of values (a chunk of an import, a batch of
    addresses) the generic plan guesses the array size and can be 50x slower (measured: duplicate
    check 0.03 s -> 2.9 s, geocoding 0.06 s -> 1.2 s on the sixth chunk of an import). Only the
    statements inside get custom plans; the setting is restored for the rest of the transaction.
    """
    if not when:
        yield
        return
    old = (
        await conn.execute(
            text(
                "SELECT current_setting('plan_cache_mode'), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)"
            )
        )
    ).scalar_one()
    yield
    await conn.execute(text("SELECT set_config('plan_cache_mode', :v, true)"), {"v": old})


async def set_tenant(
    session: AsyncSession,
    campaign_id: uuid.UUID | str | None,
    user_id: uuid.UUID | str | None = None,
) -> None:
    """Scope this transaction to one campaign (RLS) and one user (membership visibility)."""
    await session.execute(
        text(
            "SELECT set_config('porte.campaign_id', :cid, true), "
            "set_config('porte.user_id', :uid, true)"
        ),
        {"cid": str(campaign_id) if campaign_id else "", "uid": str(user_id) if user_id else ""},
    )


@asynccontextmanager
async def tenant_transaction(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    generic_plans: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a hot-path connection scoped like ``set_tenant``, in one round trip.

    The ids are ``uuid.UUID`` values (their text is hex and dashes), so they can be written into
    the statement: BEGIN and the settings go together in one simple-protocol message.

    ``generic_plans``: the connection's prepared statements run on their generic plan in this
    transaction (``plan_cache_mode``). For small lookups repeated at every request: row-level
    security's filters make PostgreSQL plan them anew each time otherwise (custom plans), and
    that planning costs ten times the lookup (1.5 ms against 0.15 ms for the map's version).
    ``generic_plan_off(conn)`` goes back to the default before heavier queries.
    """
    if not isinstance(campaign_id, uuid.UUID) or not isinstance(user_id, uuid.UUID | None):
        raise TypeError("tenant_transaction takes uuid.UUID ids")
    plans = ", set_config('plan_cache_mode', 'force_generic_plan', true)" if generic_plans else ""
    await conn.execute(
        f"BEGIN; SELECT set_config('porte.campaign_id', '{campaign_id}', true), "
        f"set_config('porte.user_id', '{user_id or ''}', true){plans}"
    )
    try:
        yield conn
    except BaseException:
        # If this fails too (cancelled mid-query), the pool rolls back when the connection
        # comes back to it.
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def generic_plan_off(conn: asyncpg.Connection) -> None:
    """Back to PostgreSQL's own choice of plan for the rest of the transaction."""
    await conn.execute("SELECT set_config('plan_cache_mode', 'auto', true)")


# ---------------------------------------------------------------- the service's own role
# What makes the service's role able to step around row-level security: being a superuser,
# having BYPASSRLS (itself, or through a role it may SET ROLE to), or owning a campaign table
# (an owner is exempt from its table's policies unless forced, and may drop them).
_ROLE_CHECK = text(
    """
    SELECT r.rolname AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
        (SELECT array_agg(DISTINCT s.rolname::text ORDER BY s.rolname::text) FROM pg_roles s
          WHERE s.oid <> r.oid AND (s.rolsuper OR s.rolbypassrls)
            AND pg_has_role(r.oid, s.oid, 'MEMBER')) AS privileged_roles,
        (SELECT array_agg(c.relname::text ORDER BY c.relname::text) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND pg_has_role(r.oid, c.relowner, 'MEMBER')
            AND (c.relrowsecurity OR c.relname = 'campaign' OR EXISTS (
                SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                  AND a.attname = 'campaign_id' AND NOT a.attisdropped))) AS owned_tables
    FROM pg_roles r WHERE r.rolname = current_user
    """
)


async def service_role_problems(engine: AsyncEngine) -> list[str]:
    """Why the role the service connects as could read across campaigns (empty: it cannot)."""
    from app.i18n import _

    async with engine.connect() as conn:
        row = (await conn.execute(_ROLE_CHECK)).one()
    out = []
    if row.superuser:
        out.append(_("the role {role} is a superuser").format(role=row.role))
    if row.bypassrls:
        out.append(_("the role {role} has BYPASSRLS").format(role=row.role))
    if row.privileged_roles:
        out.append(
            _("the role {role} is a member of {roles} (superuser or BYPASSRLS)").format(
                role=row.role, roles=", ".join(row.privileged_roles)
            )
        )
    if row.owned_tables:
        shown = ", ".join(row.owned_tables[:5]) + (" …" if len(row.owned_tables) > 5 else "")
        out.append(
            _("the role {role} owns {n} campaign table(s) ({tables})").format(
                role=row.role, n=len(row.owned_tables), tables=shown
            )
        )
    return out
