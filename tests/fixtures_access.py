"""Fixtures for the access tests: one migrated database, its app, owner engine, worlds.

Import them in a test module with ``from tests.fixtures_access import *  # noqa: F403``.
The sign-in throttle counts failures per client address: give each test its own address with
``client_for(app, "10.0.0.7")`` so that tests never block each other.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.main import create_app
from tests.conftest import DbUrls, make_settings
from tests.factories import World, make_world

_ips = itertools.count(2)


def client_for(app, ip: str | None = None) -> httpx.AsyncClient:
    """An in-process client whose requests come from ``ip`` (a fresh address by default)."""
    n = next(_ips)
    ip = ip or f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture(scope="session")
def access_urls(make_db) -> DbUrls:
    """A migrated empty database for the access tests."""
    return make_db("access")


@pytest.fixture(scope="session")
def access_settings(access_urls: DbUrls) -> Settings:
    """Settings on the access database."""
    return make_settings(access_urls)


@pytest.fixture(scope="session")
async def access_app(access_settings: Settings):
    """The real application on the access database."""
    app = create_app(access_settings)
    yield app
    await app.state.db.dispose()


@pytest.fixture(scope="session")
async def access_owner(access_urls: DbUrls) -> AsyncIterator[AsyncEngine]:
    """Owner connection (bypasses RLS) for setup and raw assertions."""
    engine = create_async_engine(access_urls.owner, pool_size=3)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def access_service_engine(access_urls: DbUrls) -> AsyncIterator[AsyncEngine]:
    """The service's own role (porte_app: no BYPASSRLS, owns nothing)."""
    engine = create_async_engine(access_urls.app, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def aclient(access_app) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own client address."""
    async with client_for(access_app) as c:
        yield c


@pytest.fixture
async def aworld(access_owner: AsyncEngine, access_settings: Settings) -> World:
    """A fresh campaign with one account per role on the access database."""
    return await make_world(access_owner, access_settings)


def new_email() -> str:
    """A fresh e-mail address."""
    return f"u-{uuid.uuid4().hex[:10]}@example.test"
