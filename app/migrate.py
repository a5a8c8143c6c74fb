"""Run Alembic migrations from code (CLI, demo, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.paths import ALEMBIC_DIR


def alembic_config(owner_url: str) -> Config:
    """Alembic config pointing at the migrations (checkout or installed package), this owner URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["owner_url"] = owner_url
    return cfg


def upgrade(owner_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (as the schema owner)."""
    command.upgrade(alembic_config(owner_url), revision)


def downgrade(owner_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(owner_url), revision)
