"""Run Alembic migrations from code (CLI, demo, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.config import REPO_ROOT


def alembic_config(owner_url: str) -> Config:
    """Alembic config pointing at the repository's migrations and this owner URL."""
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    cfg.attributes["owner_url"] = owner_url
    return cfg


def upgrade(owner_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (as the schema owner)."""
    command.upgrade(alembic_config(owner_url), revision)


def downgrade(owner_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(owner_url), revision)
