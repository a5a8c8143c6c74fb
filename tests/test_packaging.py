"""Installable as a package, not only as a checkout: `pip install .` then run from anywhere."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from app.paths import SOURCE_ROOT
from tests.conftest import DbUrls, make_settings
from tests.factories import make_world
from tests.fixtures_browser import tile_of


def test_the_package_list_names_every_package_of_app():
    """pyproject.toml lists the packages explicitly (to map static/, alembic/, data/ in)."""
    declared = set(
        tomllib.loads((SOURCE_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    on_disk = {
        ".".join(p.parent.relative_to(SOURCE_ROOT).parts)
        for p in (SOURCE_ROOT / "app").rglob("__init__.py")
    }
    assert on_disk <= declared, f"add to [tool.setuptools] packages: {sorted(on_disk - declared)}"
    assert {d for d in declared if not d.startswith("app._bundle")} == on_disk


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_checkout(dest: Path) -> Path:
    """The files git would ship (tracked, or new and not ignored): no caches, no local state."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=SOURCE_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        src = SOURCE_ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@pytest.mark.slow
async def test_pip_install_then_migrate_import_serve_from_another_folder(tmp_path, pg_cluster):
    """A non-editable install in a fresh venv runs `porte db migrate`, imports the bundled
    sample contours, serves, and answers /health, /m/ and a tile, from an unrelated folder."""
    src = _copy_checkout(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run(  # noqa: ASYNC221 (set-up before the server starts)
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: ASYNC221
    # The dependencies come from this test's environment (a path entry, not its .pth files: the
    # checkout's editable install must not leak in); the project itself from the wheel only.
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    new_site = next((venv / "lib").glob("python3*/site-packages"))
    (new_site / "deps.pth").write_text(str(site) + "\n")
    subprocess.run(  # noqa: ASYNC221 (set-up before the server starts)
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            *map(str, wheels.glob("*.whl")),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = f"pkg_{os.getpid()}_{int(time.time())}"
    pg_cluster.create_database(name)  # blank: PostGIS only, no schema
    settings = make_settings(DbUrls(name, "", ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTE_")}
    env.update(
        PORTE_MODE="development",
        DATABASE_URL=pg_cluster.url("app", name),
        OWNER_DATABASE_URL=pg_cluster.url("owner", name),
        PORTE_SECRET_KEY=settings.secret_key,
        PORTE_DATA_KEYS=settings.data_keys,
        PORTE_DATA_KEY_ID=settings.data_key_id,
        PORTE_HMAC_KEY=settings.hmac_key,
        PYTHONPATH="",
    )
    porte = str(venv / "bin" / "porte")

    def run(*args: str) -> str:
        done = subprocess.run(  # noqa: ASYNC221
            [porte, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    where = subprocess.run(  # noqa: ASYNC221
        [
            str(venv / "bin" / "python"),
            "-c",
            "import app.paths as p; print(p.DATA_DIR, p.IN_CHECKOUT)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[1] == "False" and str(new_site) in where[0]  # nothing read from the checkout
    run("db", "migrate")
    contours = Path(where[0]) / "sample_insee" / "contours_bv_9213.geojson"
    run("import", "districts", str(contours), "--code-field", "codeBureauVote", "-q")

    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(pg_cluster.url("owner", name))
    try:
        world = await make_world(engine, settings)
    finally:
        await engine.dispose()
    port = _free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 (a real server process, polled below)
        [porte, "serve", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = await c.get("/health")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stdout.read() if server.stdout else ""
                    assert time.monotonic() < deadline, "porte serve did not start"
                    await __import__("asyncio").sleep(0.2)
            assert health.status_code == 200, health.text
            assert health.json()["data"]["districts"] == 91
            page = await c.get("/m/")
            assert page.status_code == 200 and "<html" in page.text.lower()
            x, y = tile_of(2.2986, 48.7536, 13)  # Antony
            tile = await c.get(
                world.url(f"/tiles/districts/13/{x}/{y}.mvt"), headers=world.headers["analyst"]
            )
            assert tile.status_code == 200, tile.text
            assert tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
            assert len(tile.content) > 100
    finally:
        server.terminate()
        server.communicate(timeout=15)
        pg_cluster.drop_database(name)
