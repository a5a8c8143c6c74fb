"""Invite links point at the server that serves them: PORTE_PUBLIC_BASE_URL, or --host/--port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.config import Settings, base_url_for
from tests.conftest import make_settings
from tests.factories import make_world


def test_production_refuses_to_start_without_a_public_address(sample_db):
    settings = make_settings(sample_db, mode="production", public_base_url="")
    with pytest.raises(SystemExit) as stop:
        settings.check_production()
    assert "PORTE_PUBLIC_BASE_URL" in str(stop.value)


def test_a_malformed_public_address_is_refused():
    with pytest.raises(ValueError, match="PORTE_PUBLIC_BASE_URL"):
        Settings(public_base_url="porte.example.org")
    assert Settings(public_base_url="https://porte.example.org/").base_url == (
        "https://porte.example.org"
    )


def test_the_address_is_derived_from_host_and_port():
    assert base_url_for("127.0.0.1", 8100) == "http://127.0.0.1:8100"
    assert base_url_for("0.0.0.0", 8100) == f"http://{socket.gethostname()}:8100"
    assert base_url_for("::1", 80) == "http://[::1]:80"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_porte_serve_on_another_port_gives_links_to_that_port(
    sample_db, owner_engine, tmp_path
):
    """The organiser's complaint: served on 8100, the invite pointed at :8000."""
    settings = make_settings(sample_db)
    world = await make_world(owner_engine, settings)
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PORTE_") and "DATABASE_URL" not in k
    }
    env.update(
        PORTE_MODE="development",
        DATABASE_URL=settings.database_url,
        OWNER_DATABASE_URL=settings.owner_database_url,
        PORTE_SECRET_KEY=settings.secret_key,
        PORTE_DATA_KEYS=settings.data_keys,
        PORTE_DATA_KEY_ID=settings.data_key_id,
        PORTE_HMAC_KEY=settings.hmac_key,
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 (a real server process, polled below)
        [sys.executable, "-m", "app.cli", "--lang", "en", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=base) as c:
            while True:
                try:
                    if (await c.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "porte serve did not start"
                await asyncio.sleep(0.2)
            r = await c.post(world.url("/invites"), headers=world.headers["organiser"], json={})
            assert r.status_code == 201, r.text
            assert r.json()["link"].startswith(f"{base}/m/#invite=")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert f"Invite links will point to {base}" in out
