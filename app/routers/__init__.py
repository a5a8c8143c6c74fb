"""HTTP layer: one thin module per resource. ``include_routers`` mounts them all, listed here."""

from __future__ import annotations

from fastapi import FastAPI

from app.routers import (
    assignments,
    audit,
    auth,
    basemap,
    campaigns,
    elections,
    exports,
    gdpr,
    invites,
    members,
    ogc,
    pages,
    privacy,
    progress,
    ranking,
    reference,
    rounds,
    server,
    supporters,
    tiles,
    turfs,
    visits,
    volunteers,
)

# Order matters only for the OpenAPI listing; the pages module also mounts static files.
ROUTERS = (
    assignments,
    audit,
    auth,
    basemap,
    campaigns,
    elections,
    exports,
    gdpr,
    invites,
    members,
    ogc,
    pages,
    privacy,
    progress,
    ranking,
    reference,
    rounds,
    server,
    supporters,
    tiles,
    turfs,
    visits,
    volunteers,
)


def include_routers(app: FastAPI) -> None:
    """Mount every router of the service (and the static files of ``pages``)."""
    for module in ROUTERS:
        app.include_router(module.router)
    pages.mount(app)
