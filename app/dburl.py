"""Database URLs of the service and the owner, without loading any database library.

Command-line tools import this at start-up; ``app.db`` (SQLAlchemy, asyncpg) re-exports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

    from app.config import Settings

# How often (ms) a backend running a long statement checks that its client is still there. A
# command or worker killed with `kill -9` mid-statement (an index rebuild, an allocation step)
# would otherwise leave its backend running, locks held, until the statement ends; with the check
# the backend aborts within this time and rolls back (PostgreSQL >= 14, any role may set it).
CLIENT_CHECK_MS = "2000"


def resolve_urls(settings: Settings) -> tuple[str, str]:
    """(service URL, owner URL): from settings, else from the private cluster."""
    app_url, owner_url = settings.database_url, settings.owner_database_url
    if app_url is None or owner_url is None:
        from app.pgcluster import Cluster

        cluster = Cluster(settings.db_dir, settings.db_port)
        app_url = app_url or cluster.url("app")
        owner_url = owner_url or (settings.database_url or cluster.url("owner"))
    return _asyncpg(app_url), _asyncpg(owner_url)


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN from a SQLAlchemy URL (drops the +driver part)."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep else url


async def connect_long_job(url: str, application_name: str) -> asyncpg.Connection:
    """A raw asyncpg connection for a long job of the owner (an import, an allocation refresh):
    JIT off, and its backend stops within ``CLIENT_CHECK_MS`` if the job is killed."""
    import asyncpg

    return await asyncpg.connect(
        asyncpg_dsn(url),
        server_settings={
            "application_name": application_name,
            "jit": "off",
            "client_connection_check_interval": CLIENT_CHECK_MS,
        },
    )


def _asyncpg(url: str) -> str:
    for prefix in (
        "postgresql://",
        "postgres://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
