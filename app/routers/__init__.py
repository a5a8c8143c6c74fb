"""HTTP layer: one thin module per resource. ``include_routers`` mounts them all, listed here."""

from __future__ import annotations

from importlib import import_module

from fastapi import FastAPI

# Order matters only for the OpenAPI listing; the pages module also mounts static files.
MODULES = (
    "assignments",
    "audit",
    "auth",
    "basemap",
    "campaigns",
    "elections",
    "exports",
    "gdpr",
    "invites",
    "members",
    "ogc",
    "pages",
    "privacy",
    "progress",
    "ranking",
    "reference",
    "rounds",
    "server",
    "supporters",
    "tiles",
    "turfs",
    "visits",
    "volunteers",
)
ROUTERS = tuple(import_module(f"app.routers.{name}") for name in MODULES)


def include_routers(app: FastAPI) -> None:
    """Mount every router of the service (and the static files of ``pages``)."""
    for module in ROUTERS:
        app.include_router(module.router)
    from app.routers import pages  # imported with the others above

    pages.mount(app)
