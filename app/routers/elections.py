"""Imported elections and their sides (public data: results by polling station)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.security import Session
from app.services.reference import elections as service

router = APIRouter(tags=["reference data"])


@router.get("/elections")
async def list_elections(session: Session) -> dict[str, Any]:
    """Every imported election: name, where it ran (communes), districts, voters, sides."""
    return {"elections": await service.list_elections(session)}


@router.get("/elections/{election}/sides")
async def list_sides(session: Session, election: str) -> dict[str, Any]:
    """What an election offers: nuance code and name, list labels or candidates, votes, where.

    Any of these names works as the campaign's ``side`` (``PUT /campaigns/{id}/weights``).
    """
    return await service.list_sides(session, election)
