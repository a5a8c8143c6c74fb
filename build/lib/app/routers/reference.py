"""Public reference data: service health, polling-station districts (GeoJSON, WGS84)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.security import DatabaseDep, Session
from app.services.reference import public as service

router = APIRouter(tags=["reference data"])
GEOJSON = "application/geo+json"


@router.get("/health")
async def health(db: DatabaseDep) -> Any:
    """Database and PostGIS versions, data counts; says when the demo doors are synthetic."""
    try:
        async with db.transaction() as session:
            return await service.health(session)
    except (OSError, SQLAlchemyError) as exc:
        return JSONResponse(
            {
                "status": "error",
                "detail": f"The database cannot be reached ({type(exc).__name__}). "
                "Check DATABASE_URL, or run `porte db start`.",
            },
            status_code=503,
        )


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
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/districts/{code}", response_class=JSONResponse)
async def get_district(session: Session, code: str) -> JSONResponse:
    """One district as a GeoJSON Feature with the totals of every loaded election."""
    return JSONResponse(await service.get_district(session, code), media_type=GEOJSON)
