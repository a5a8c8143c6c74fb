"""Public reference data: service health, polling-station districts (GeoJSON, WGS84)."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.dbfaults import Unavailable, classify
from app.i18n import _
from app.routers.responses import json_as
from app.security import DatabaseDep, Session
from app.services.reference import public as service

router = APIRouter(tags=["reference data"])
GEOJSON = "application/geo+json"


@router.get("/health")
@router.get("/health/ready")
async def health(db: DatabaseDep) -> Any:
    """Readiness: database and PostGIS versions, data counts (503 while the database is down)."""
    try:
        async with db.transaction() as session:
            body = await service.health(session)
            body = {**body, "database": {**body["database"], "status": "available"}}
            if db.replica is not None:  # lag-tolerant reads (docs/scale.md)
                body["replica"] = db.replica.status()
            return body
    except (OSError, TimeoutError, SQLAlchemyError, asyncpg.PostgresError) as exc:
        down = classify(exc) or Unavailable(type(exc).__name__, 5)
        return JSONResponse(
            {
                "status": "error",
                "database": {"status": "unavailable", "reason": down.reason},
                "detail": _(
                    "The database cannot answer ({reason}). Check DATABASE_URL, or run "
                    "`porte db start`; this service keeps running and recovers by itself."
                ).format(reason=down.said()),
            },
            status_code=503,
            headers={"Retry-After": str(down.retry_after)},
        )


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Liveness: the process answers (200 even while the database is down: do not restart)."""
    return {"status": "alive"}


@router.get("/districts", response_class=JSONResponse)
async def list_districts(
    session: Session,
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat in WGS84, e.g. 2.22,48.72,2.33,48.79"),
    ] = None,
    commune: Annotated[str | None, Query(description="INSEE commune code, e.g. 92002")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Districts as a GeoJSON FeatureCollection: code, name, commune, door count, registered
    voters of the last loaded election."""
    body = await service.list_districts(
        session, bbox=bbox, commune=commune, limit=limit, offset=offset
    )
    return json_as(body, GEOJSON)


@router.get("/districts/{code}", response_class=JSONResponse)
async def get_district(session: Session, code: str) -> JSONResponse:
    """One district as a GeoJSON Feature with the totals of every loaded election."""
    return json_as(await service.get_district(session, code), GEOJSON)
