"""Property-based run over the app's own OpenAPI schema: no route answers 5xx.

Schemathesis generates requests for every operation of ``/openapi.json`` (so routes added later
are covered without changes here), sent in-process over ASGI with a valid admin token, with
campaign ids pointing at the admin's own campaign so that handlers (not only the scope check)
run. Examples per operation are bounded to keep the whole run short.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.factories import make_world

MAX_EXAMPLES = int(os.environ.get("PORTE_SCHEMATHESIS_EXAMPLES", "5"))


@pytest.fixture(scope="module")
async def st_world(owner_engine, settings):
    """An admin's campaign on the sample database."""
    return await make_world(owner_engine, settings)


@pytest.fixture(scope="module")
def st_app(settings):
    """A dedicated app instance on the sample database (its engine lives on schemathesis'
    event loop, not on the test session's)."""
    from app.main import create_app

    return create_app(settings)


def _schema_app():
    """The real app, built at collection time only to serve its OpenAPI document."""
    from app.config import Settings
    from app.main import create_app

    nowhere = "postgresql://nobody@127.0.0.1:1/none"
    return create_app(Settings(mode="test", database_url=nowhere, owner_database_url=nowhere))


schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())
# The coverage phase (boundary values, missing and wrong-typed parameters) runs in full; only its
# "unexpected method" probes are cut to one per route (they all meet the router's same 405).
schema.config.phases.coverage.unexpected_methods = {"trace"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(case, st_world, st_app):
    if case.path_parameters and "campaign_id" in case.path_parameters:
        case.path_parameters["campaign_id"] = str(st_world.campaign_id)
    response = case.call(app=st_app, headers=st_world.headers["admin"])
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
