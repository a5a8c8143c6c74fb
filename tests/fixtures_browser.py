"""Fixtures for the map tests: a campaign with two turfs of real Bruz doors, and a live server.

``make_turf_world`` writes straight to the database as the owner (like tests/factories.py):
a round, turf A assigned to the volunteer account, turf B assigned to nobody in particular, each
with its doors frozen in walking order. ``live_server`` runs the app under uvicorn on 127.0.0.1
in a thread, for the browser tests.
"""

from __future__ import annotations

import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.factories import World, make_world

# Two spots of Bruz (real BAL doors, loaded by the sample) about 900 m apart.
SPOT_A = (-1.7466, 48.0245)
SPOT_B = (-1.7340, 48.0245)


@dataclass
class TurfWorld:
    """A campaign (``world``) with two assigned turfs and their doors in walking order."""

    world: World
    round_id: uuid.UUID
    turf_a: uuid.UUID
    turf_b: uuid.UUID
    assignment_a: uuid.UUID
    assignment_b: uuid.UUID
    doors_a: list[int]
    doors_b: list[int]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The web-mercator tile (x, y) holding a point at zoom z."""
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


async def _turf(
    conn,
    cid: uuid.UUID,
    name: str,
    spot: tuple[float, float],
    n: int,
    exclude: list[int],
    where: str = "code_insee = '35047'",
) -> tuple[uuid.UUID, list[int]]:
    rows = (
        await conn.execute(
            text(
                f"SELECT id FROM address WHERE NOT (id = ANY(:ex)) AND {where} "
                "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT :n"
            ),
            {"ex": exclude, "lon": spot[0], "lat": spot[1], "n": n},
        )
    ).all()
    doors = [r.id for r in rows]
    turf_id = (
        await conn.execute(
            text(
                "INSERT INTO turf (campaign_id, name, geom, door_count) "
                "SELECT :c, :name, ST_Multi(ST_Buffer(ST_ConvexHull(ST_Collect(geom))::geography,"
                " 15)::geometry), count(*) FROM address WHERE id = ANY(:ids) RETURNING id"
            ),
            {"c": cid, "name": name, "ids": doors},
        )
    ).scalar_one()
    for seq, door in enumerate(doors, start=1):
        await conn.execute(
            text(
                "INSERT INTO turf_door (campaign_id, turf_id, address_id, seq) "
                "VALUES (:c, :t, :a, :s)"
            ),
            {"c": cid, "t": turf_id, "a": door, "s": seq},
        )
    return turf_id, doors


async def _assign(conn, cid, turf_id, doors, volunteer) -> uuid.UUID:
    aid = (
        await conn.execute(
            text(
                "INSERT INTO assignment (campaign_id, turf_id, volunteer_user_id) "
                "VALUES (:c, :t, :u) RETURNING id"
            ),
            {"c": cid, "t": turf_id, "u": volunteer},
        )
    ).scalar_one()
    for seq, door in enumerate(doors, start=1):
        await conn.execute(
            text(
                "INSERT INTO assignment_door (campaign_id, assignment_id, address_id, seq) "
                "VALUES (:c, :a, :d, :s)"
            ),
            {"c": cid, "a": aid, "d": door, "s": seq},
        )
    return aid


async def make_turf_world(
    engine: AsyncEngine,
    settings: Settings,
    *,
    n_doors: int = 12,
    spot_a: tuple[float, float] = SPOT_A,
    where_a: str = "code_insee = '35047'",
) -> TurfWorld:
    """A fresh campaign with turf A (assigned to the volunteer account) and turf B.

    By default turf A holds the real Bruz doors nearest SPOT_A; ``spot_a``/``where_a`` pick
    others (e.g. the sample's synthetic 92-13 doors, which include buildings of flats).
    """
    world = await make_world(engine, settings)
    cid = world.campaign_id
    async with engine.begin() as conn:
        round_id = (
            await conn.execute(
                text(
                    "INSERT INTO canvass_round (campaign_id, number, name, started_at) "
                    "VALUES (:c, 1, 'Round 1', now() - interval '1 day') RETURNING id"
                ),
                {"c": cid},
            )
        ).scalar_one()
        turf_a, doors_a = await _turf(conn, cid, "Turf A", spot_a, n_doors, [], where_a)
        turf_b, doors_b = await _turf(conn, cid, "Turf B", SPOT_B, n_doors, doors_a)
        assignment_a = await _assign(conn, cid, turf_a, doors_a, world.users["volunteer"])
        assignment_b = await _assign(conn, cid, turf_b, doors_b, None)
    return TurfWorld(world, round_id, turf_a, turf_b, assignment_a, assignment_b, doors_a, doors_b)


async def add_visits(
    engine: AsyncEngine, tw: TurfWorld, doors: list[int], outcome: str = "talked"
) -> None:
    """Record visits of the current round (as the owner, for tile tests)."""
    async with engine.begin() as conn:
        for door in doors:
            await conn.execute(
                text(
                    "INSERT INTO visit (campaign_id, id, address_id, assignment_id, round_id, "
                    "outcome, visited_at) VALUES (:c, gen_random_uuid(), :d, :a, :r, :o, now())"
                ),
                {
                    "c": tw.world.campaign_id,
                    "d": door,
                    "a": tw.assignment_a,
                    "r": tw.round_id,
                    "o": outcome,
                },
            )
            if outcome == "do_not_knock":
                await conn.execute(
                    text("INSERT INTO door_flag (campaign_id, address_id) VALUES (:c, :d)"),
                    {"c": tw.world.campaign_id, "d": door},
                )


# ---------------------------------------------------------------- live server for the browser
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_thread(app, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread; its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class LiveServer:
    """The app served by uvicorn on 127.0.0.1."""

    url: str
    settings: Settings


@pytest.fixture(scope="session")
def placeholder_basemap(sample_db, tmp_path_factory) -> Path:
    """The demo's placeholder basemap, built from the sample database (a few seconds)."""
    from app.commands.basemap import build_placeholder_file

    out = tmp_path_factory.mktemp("basemap") / "placeholder.pmtiles"
    build_placeholder_file(sample_db.owner, out)
    return out


@pytest.fixture(scope="session")
def live_server(sample_db, placeholder_basemap) -> Iterator[LiveServer]:
    """The app on the sample database with default map settings (its own basemap, no third
    party), served over HTTP by uvicorn in a thread."""
    from app.main import create_app
    from tests.conftest import make_settings

    port = free_port()
    settings = make_settings(
        sample_db, public_base_url=f"http://127.0.0.1:{port}", basemap=placeholder_basemap
    )
    with uvicorn_thread(create_app(settings), port) as url:
        yield LiveServer(url, settings)


BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def browser():
    """Debian's Chromium driven by Playwright's async API (never downloads a browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield b
        await b.close()
