"""Application factory: ``create_app(settings)``; ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.responses import Response

from app import __version__
from app.config import Settings, get_settings
from app.db import Database
from app.errors import install_error_handlers

log = logging.getLogger("porte")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Pages load only their own scripts; tiles of the configured basemap may come from elsewhere.
CSP = (
    "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'"
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for these settings (tests pass their own)."""
    settings = settings or get_settings()
    settings.check_production()
    db = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await db.dispose()

    app = FastAPI(
        title="Porte-à-porte",
        version=__version__,
        description=(
            "Door-to-door canvassing maps that keep precise addresses private. Every campaign "
            "route lives under `/campaigns/{campaign_id}` and answers 404 for campaigns the caller "
            "is not a member of."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db

    install_error_handlers(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next) -> Response:
        # A caller-supplied id is kept only if harmless in logs and CSV (no spaces, no newlines).
        rid = _SAFE_ID.sub("", request.headers.get("X-Request-ID", ""))[:64]
        request.state.request_id = rid or uuid.uuid4().hex
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Content-Security-Policy", CSP)
        if settings.mode == "production":  # served over HTTPS behind the proxy
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        log.info(
            "%s %s -> %s in %.1f ms [%s]",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - start) * 1000,
            request.state.request_id,
        )
        return response

    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
        )

    from app.routers import include_routers

    include_routers(app)
    return app
