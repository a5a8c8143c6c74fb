"""The one engine factory of the service and its commands: ``make_engine``.

A module of its own so that ``app.db`` (requests, tenant, owner engine) and ``app.replica`` (the
lag-tolerant reads, which ``app.db`` hands to the app) both build on it without importing each
other. ``app.db`` re-exports it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.dburl import CLIENT_CHECK_MS


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    statement_timeout_s: float | None = None,
    pool_timeout_s: float = 30,
    application_name: str = "porte",
    connect_timeout_s: float | None = None,
) -> AsyncEngine:
    """An asyncpg engine; JIT off (short queries), app name for pg_stat_activity.

    Every engine of the service and its commands is made here (tests/test_db_errors.py checks).
    Bound parameters never appear in error messages or logs (``hide_parameters``): they may be
    a supporter's address. ``statement_timeout_s`` caps every statement (None: the server's).
    """
    server_settings = {
        "jit": "off",
        "application_name": application_name,
        "client_connection_check_interval": CLIENT_CHECK_MS,
    }
    if statement_timeout_s:
        server_settings["statement_timeout"] = str(int(statement_timeout_s * 1000))
    connect_args: dict = {"server_settings": server_settings}
    if connect_timeout_s:
        connect_args["timeout"] = connect_timeout_s
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_timeout=pool_timeout_s,
        hide_parameters=True,
        connect_args=connect_args,
    )
