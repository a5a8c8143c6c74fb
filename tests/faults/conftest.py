"""A PostGIS cluster of the fault tests' own, which they may stop, start and fill.

The suite's shared cluster is never disturbed: these tests start their own (a few seconds), load
Bruz's real doors, and give each test a campaign with a turf assigned to its volunteer.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.migrate import upgrade
from app.pgcluster import Cluster
from tests.conftest import DbUrls, make_settings

pytestmark = pytest.mark.faults


def pytest_collection_modifyitems(config, items):
    """Refuse a fault test without a time bound (``@bounded``, tests/faults/bounds.py)."""
    here = Path(__file__).parent
    for item in items:
        ours = here in Path(item.path).parents and hasattr(item, "function")
        if ours and getattr(item.function, "fault_bound", None) is None:
            raise pytest.UsageError(
                f"{item.nodeid}: every fault test needs a time bound: @bounded(seconds)"
            )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FaultDb:
    """The fault tests' cluster and their database's URLs."""

    cluster: Cluster
    urls: DbUrls


@pytest.fixture(scope="session")
def fault_db() -> Iterator[FaultDb]:
    """A private cluster with a migrated database holding Bruz's doors."""
    import asyncio
    import shutil
    import tempfile

    from app.services.reference.imports.addresses import import_addresses
    from app.services.reference.imports.sample import BRUZ_BAL

    # Under /tmp itself: the server runs as `porte` when the tests run as root, and pytest's own
    # temporary folders are private to their user.
    base = Path(tempfile.mkdtemp(prefix="porte-faults-", dir="/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "db", _free_port())
    cluster.start()
    cluster.create_database("faults")
    urls = DbUrls("faults", cluster.url("app", "faults"), cluster.url("owner", "faults"))
    upgrade(urls.owner)
    asyncio.run(import_addresses(urls.owner, BRUZ_BAL, report_path=base / "r.csv"))
    yield FaultDb(cluster, urls)
    cluster.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def fault_owner(fault_db: FaultDb) -> AsyncIterator[AsyncEngine]:
    """An owner engine on the fault database (fresh per test: the server may restart)."""
    engine = create_async_engine(fault_db.urls.owner, pool_pre_ping=True)
    yield engine
    await engine.dispose()


@pytest.fixture
def fault_settings(fault_db: FaultDb):
    """Settings of an app on the fault database, with short time limits."""
    return make_settings(fault_db.urls, statement_timeout_s=2, pool_timeout_s=2, db_pool_size=3)


@pytest.fixture
async def fault_client(fault_settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the fault database, in-process."""
    from app.main import create_app

    app = create_app(fault_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://faults") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c
    await app.state.db.dispose()
