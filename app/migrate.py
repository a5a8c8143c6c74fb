"""Run Alembic migrations from code (CLI, demo, tests)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from app.config import Settings, get_settings
from app.paths import ALEMBIC_DIR


def alembic_config(owner_url: str) -> Config:
    """Alembic config pointing at the migrations (checkout or installed package), this owner URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["owner_url"] = owner_url
    return cfg


def upgrade(owner_url: str, revision: str = "head", settings: Settings | None = None) -> None:
    """Migrate the database to ``revision`` (as the schema owner); at head, also write the
    server's retention policy from the settings (``PORTE_VISIT_RETENTION_MAX_*``)."""
    command.upgrade(alembic_config(owner_url), revision)
    if revision == "head":
        asyncio.run(_retention_policy(owner_url, settings or get_settings()))


async def _retention_policy(owner_url: str, settings: Settings) -> None:
    """Write the server's retention policy (``apply_retention_policy``) as the owner."""
    from app.db import _asyncpg, make_engine
    from app.services.people.purge import apply_retention_policy

    engine = make_engine(_asyncpg(owner_url), pool_size=1, pool_timeout_s=settings.pool_timeout_s)
    try:
        async with engine.begin() as conn:
            await apply_retention_policy(conn, settings)
    finally:
        await engine.dispose()


def downgrade(owner_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(owner_url), revision)
