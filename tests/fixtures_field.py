"""Helpers and fixtures for the field tests (turfs, assignments, visits), on the sample database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

BRUZ_CENTRE = (-1.7466, 48.0245)  # Bruz town centre (lon, lat), real BAL doors around it


def box(lon: float, lat: float, half_w: float, half_h: float | None = None) -> dict[str, Any]:
    """A GeoJSON rectangle around (lon, lat), half sizes in degrees."""
    h = half_w if half_h is None else half_h
    ring = [
        [lon - half_w, lat - h],
        [lon + half_w, lat - h],
        [lon + half_w, lat + h],
        [lon - half_w, lat + h],
        [lon - half_w, lat - h],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def now_iso(delta: timedelta = timedelta()) -> str:
    """An aware ISO timestamp, now + delta."""
    return (datetime.now(UTC) + delta).isoformat()


async def largest_district(engine: AsyncEngine) -> tuple[str, int]:
    """The sample's polling station with the most doors: (code, doors)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT d.code, count(*) AS n FROM district d JOIN address a "
                    "ON ST_Intersects(d.geom, a.geom) GROUP BY d.code ORDER BY n DESC LIMIT 1"
                )
            )
        ).one()
    return row.code, row.n


async def smallest_district(engine: AsyncEngine, at_least: int = 60) -> tuple[str, int]:
    """A small polling station with at least ``at_least`` doors: (code, doors)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT d.code, count(*) AS n FROM district d JOIN address a "
                    "ON ST_Intersects(d.geom, a.geom) GROUP BY d.code HAVING count(*) >= :m "
                    "ORDER BY n LIMIT 1"
                ),
                {"m": at_least},
            )
        ).one()
    return row.code, row.n


async def cut_area(
    client: httpx.AsyncClient, world: Any, geometry: dict, per: int, role: str = "organiser"
) -> dict[str, Any]:
    """Cut the doors inside ``geometry`` into turfs; returns the response body."""
    r = await client.post(
        world.url("/cut"),
        json={"area": geometry, "doors_per_turf": per},
        headers=world.headers[role],
    )
    assert r.status_code == 201, r.text
    return r.json()


async def assign(
    client: httpx.AsyncClient, world: Any, turf_id: str, user: str = "volunteer", **extra: Any
) -> dict[str, Any]:
    """Assign a turf to one of the world's accounts."""
    body = {"turf_id": turf_id, "volunteer_user_id": str(world.users[user]), **extra}
    r = await client.post(world.url("/assignments"), json=body, headers=world.headers["organiser"])
    assert r.status_code == 201, r.text
    return r.json()


async def assignment_doors(engine: AsyncEngine, assignment_id: str) -> list[int]:
    """The frozen door ids of an assignment, in walking order (as the owner)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT address_id FROM assignment_door WHERE assignment_id = :a ORDER BY seq"),
            {"a": assignment_id},
        )
        return [r.address_id for r in rows]


def visit(door: int, outcome: str = "talked", at: str | None = None, **extra: Any) -> dict:
    """One visit item with a fresh client UUID."""
    return {
        "id": str(uuid.uuid4()),
        "door": door,
        "outcome": outcome,
        "visited_at": at or now_iso(),
        **extra,
    }


async def count_visits(engine: AsyncEngine, campaign_id: uuid.UUID) -> int:
    """Visits stored for a campaign (as the owner)."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM visit WHERE campaign_id = :c"), {"c": campaign_id}
            )
        ).scalar_one()


async def draw(
    client: httpx.AsyncClient, world: Any, geometry: dict, name: str = "Turf"
) -> dict[str, Any]:
    """Draw a turf as the organiser; returns it."""
    r = await client.post(
        world.url("/turfs"),
        json={"name": name, "geometry": geometry},
        headers=world.headers["organiser"],
    )
    assert r.status_code == 201, r.text
    return r.json()


async def assigned_turf(
    client: httpx.AsyncClient,
    world: Any,
    engine: AsyncEngine,
    half: float = 0.0012,
    offset: tuple[float, float] = (0.0, 0.0),
) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """A Bruz turf assigned to the world's volunteer: (turf, assignment, door ids in order)."""
    turf = await draw(
        client, world, box(BRUZ_CENTRE[0] + offset[0], BRUZ_CENTRE[1] + offset[1], half)
    )
    assignment = await assign(client, world, turf["id"])
    return turf, assignment, await assignment_doors(engine, assignment["id"])
