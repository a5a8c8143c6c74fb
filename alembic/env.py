"""Alembic environment: runs migrations as the schema owner, over asyncpg."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import get_settings
from app.db import resolve_urls
from app.tables import metadata
from app.tables.meta import COMPARE_OPTIONS

config = context.config


def _url() -> str:
    url = config.attributes.get("owner_url") or config.get_main_option("sqlalchemy.url")
    return url or resolve_urls(get_settings())[1]


def _run(connection) -> None:
    # The declared schema (app/tables): `alembic revision --autogenerate` starts from it.
    context.configure(connection=connection, target_metadata=metadata, **COMPARE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool, hide_parameters=True)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
