"""Test fixtures: a real throwaway PostGIS cluster, migrated databases, the app over ASGI.

The suite starts its own private cluster (app.pgcluster) in a temporary directory on a free port:
nothing is mocked. ``porte_template`` is migrated once; each database a test asks for is a cheap
``CREATE DATABASE ... TEMPLATE`` copy of it. ``sample_db`` also holds the 92-13 sample data.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.migrate import upgrade
from app.pgcluster import Cluster
from tests.fixtures_mail import mail_sink

TEMPLATE = "porte_template"

# Commands the tests run read their settings from the environment: test mode, and any local
# secrets file (development and demo modes, app/local_secrets.py) in a throwaway place, never in
# the checkout.
os.environ.setdefault("PORTE_MODE", "test")
os.environ.setdefault(
    "PORTE_SECRETS_FILE",
    str(Path(tempfile.mkdtemp(prefix="porte-test-secrets-")) / "porte-secrets.json"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DbUrls:
    """Connection URLs of one test database."""

    name: str
    app: str
    owner: str


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A private PostGIS cluster for this test session, destroyed at the end."""
    base = Path(tempfile.mkdtemp(prefix="porte-test-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "db", _free_port())
    cluster.start()
    cluster.create_database(TEMPLATE)
    upgrade(cluster.url("owner", TEMPLATE))
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def make_db(pg_cluster: Cluster):
    """Factory: a new migrated, empty database (copy of the template)."""

    def _make(prefix: str = "t") -> DbUrls:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        pg_cluster.create_database(name, template=TEMPLATE)
        return DbUrls(name, pg_cluster.url("app", name), pg_cluster.url("owner", name))

    return _make


@pytest.fixture(scope="session")
def sample_db(make_db) -> DbUrls:
    """A database with the 92-13 sample (tiles, districts, results, doors) and Bruz's doors."""
    urls = make_db("sample")
    from app.services.reference.imports.sample import load_sample

    load_sample(urls.owner, quiet=True)
    return urls


def make_settings(urls: DbUrls, **overrides) -> Settings:
    """Settings for a test app on this database, with throwaway secrets."""
    key = base64.b64encode(b"k" * 32).decode()
    values = dict(
        mode="test",
        database_url=urls.app,
        owner_database_url=urls.owner,
        secret_key="test-secret-key-" + "x" * 32,
        data_keys=json.dumps({"test1": key}),
        data_key_id="test1",
        hmac_key="test-hmac-key-" + "h" * 32,  # 32 bytes at least, as outside test mode
        db_pool_size=5,
        smtp_host="127.0.0.1",
        smtp_port=mail_sink().port,
        pool_timeout_s=30,  # a loaded 2-core test machine must not turn waits into 503s
        # no basemap unless a test installs one (never the checkout's .porte/basemap.pmtiles)
        basemap=Path(tempfile.gettempdir()) / "porte-test-no-basemap.pmtiles",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(sample_db: DbUrls) -> Settings:
    """Settings of the shared sample database."""
    return make_settings(sample_db)


@pytest.fixture(scope="session")
def app(settings: Settings):
    """The application on the sample database."""
    from app.main import create_app

    return create_app(settings)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture(scope="session")
async def owner_engine(sample_db: DbUrls) -> AsyncIterator[AsyncEngine]:
    """An engine connected as the schema owner (bypasses RLS): for setup and raw assertions."""
    engine = create_async_engine(sample_db.owner, pool_size=3)
    yield engine
    await engine.dispose()


@pytest.fixture
async def world(owner_engine: AsyncEngine, settings: Settings):
    """A fresh campaign with one account per role (see tests/factories.py)."""
    from tests.factories import make_world

    return await make_world(owner_engine, settings)


@pytest.fixture
def english() -> Iterator[None]:
    """Messages in English for this test (French is the default): for tests that read a
    service's or a library function's English text. API tests send ``Accept-Language: en``
    instead, command-line tests ``--lang en``."""
    from app.i18n import reset_language, set_language

    token = set_language("en")
    try:
        yield
    finally:
        reset_language(token)
