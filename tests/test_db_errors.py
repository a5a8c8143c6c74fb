"""Database errors never put personal data in the logs or in the answer.

A database error's text used to carry the values bound to the statement ("[parameters: ...]"):
a failed geocoding logged the supporter's address. Engines hide the binds (``hide_parameters``)
and the error handler logs the driver's class, SQLSTATE and statement, never its message.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import make_world
from tests.fixtures_supporters import person

ADDRESS = "14 rue des Coquelicots Pourpres, 35170 Bruz"
TELLING = ("coquelicot", "pourpre", "35170", "bruz")  # no part of it may be logged


async def test_a_database_error_while_geocoding_logs_no_address(make_db, caplog):
    urls = make_db("dberr")
    settings = make_settings(urls)
    owner = create_async_engine(urls.owner)
    app = create_app(settings)
    try:
        world = await make_world(owner, settings)
        # Force a failure inside geocoding: the service may no longer read the geocoder's index.
        async with owner.begin() as conn:
            await conn.execute(
                text(f"REVOKE SELECT ON geocode_commune, geocode_street FROM {settings.app_role}")
            )
        caplog.set_level(logging.DEBUG)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.post(
                world.url("/supporters"),
                headers=world.headers["admin"],
                json=person(1, address=ADDRESS),
            )
        assert r.status_code == 500, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.text.lower()
        assert not [t for t in TELLING if t in body], r.text
        # The failure is logged, usefully (SQLSTATE 42501: permission denied), without the address.
        logged = caplog.text.lower()
        assert not [t for t in TELLING if t in logged], caplog.text
        assert "database error" in logged and "42501" in logged
    finally:
        await app.state.db.dispose()
        await owner.dispose()


def test_the_log_line_of_a_database_error_leaves_out_the_driver_message():
    """A driver message that quotes the value (asyncpg does) is not written to the log."""
    from app.errors import describe_db_error

    class Driver(Exception):
        sqlstate = "22P02"

    orig = Driver("invalid input for query argument $1: '12 rue des Lilas' (not an int)")
    exc = DBAPIError("SELECT * FROM address WHERE numero = $1", ("12 rue des Lilas",), orig)
    line = describe_db_error(exc)
    assert "Lilas" not in line
    assert "22P02" in line and "SELECT * FROM address" in line


def test_every_engine_of_the_service_hides_parameters():
    """Every SQLAlchemy engine in app/ and alembic/ is made by make_engine or hides binds."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.joinpath("app").rglob("*.py"), *root.joinpath("alembic").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("create_async_engine", "create_engine"):
                hides = any(
                    k.arg == "hide_parameters"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                if not hides:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
