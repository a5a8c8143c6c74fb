"""HTTP layer: one thin module per resource. ``include_routers`` mounts them all."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    """Mount every module of this package that defines ``router`` (and ``mount(app)`` if any)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "router"):
            app.include_router(module.router)
        if hasattr(module, "mount"):
            module.mount(app)
