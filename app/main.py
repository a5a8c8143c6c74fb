"""Application factory: ``create_app(settings)``; ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.config import Settings, get_settings
from app.db import Database, service_role_problems
from app.errors import install_error_handlers
from app.i18n import _, negotiate, reset_language, set_language
from app.local_secrets import announce_once, check_secrets, with_local_secrets
from app.replica import Replica

log = logging.getLogger("porte")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")
_LANG_QUERY = re.compile(r"(?:^|&)lang=(fr|en)(?:&|$)")
_WORDED = re.compile(r"json|text/(plain|csv)")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(raster_origin: str | None = None) -> str:
    """The pages run only their own script files (no inline script, no eval) and talk only to
    their own origin: the basemap is served by the service itself. Images of one other origin
    are allowed only when a raster basemap is set explicitly (``PORTE_BASEMAP_RASTER_URL``).
    Inline styles stay allowed: Leaflet positions its tiles and markers with them."""
    img = "'self' data: blob:" + (f" {raster_origin}" if raster_origin else "")
    return (
        f"default-src 'self'; img-src {img}; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; worker-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


class RequestContext:
    """Request id, language, security headers, deadline, drain, one log line per request.

    Plain ASGI (cheap per call). A request still running after ``deadline`` seconds is cancelled
    (its transaction rolls back) and answered 503 with Retry-After if nothing was sent yet. Once
    the process is asked to stop (SIGTERM, ``state.draining``), new requests get 503 (with
    ``Connection: close``) while those in flight finish; one still running when the server's
    grace period ends is cancelled, rolled back and answered 503 too (docs/operations.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        production: bool = False,
        lang: str = "fr",
        deadline: float = 90,
        state: Any = None,
        csp: str | None = None,
    ):
        self.app = app
        self.lang = lang
        self.deadline = deadline
        self.state = state
        csp = csp or content_security_policy()
        self.extra = dict(SECURITY_HEADERS, **{"Content-Security-Policy": csp})
        if production:  # served over HTTPS behind the proxy
            self.extra["Strict-Transport-Security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A caller-supplied id is kept only if harmless in logs and CSV (no spaces, no newlines).
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = _SAFE_ID.sub("", given.decode("latin-1"))[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 0
        accept = next((v for k, v in scope["headers"] if k == b"accept-language"), b"")
        lang = negotiate(accept.decode("latin-1"), self.lang)
        # a page opened from a link (the privacy notice's FR | EN links) may ask with ?lang=
        asked = _LANG_QUERY.search(scope.get("query_string", b"").decode("latin-1"))
        if asked:
            lang = asked.group(1)
        lang_token = set_language(lang)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                # Messages (errors, explanations, CSV reasons) follow Accept-Language.
                if _WORDED.search(headers.get("content-type", "")):
                    headers.setdefault("Content-Language", lang)
                    headers.add_vary_header("Accept-Language")
                for k, v in self.extra.items():
                    if k not in headers:
                        headers[k] = v
            await send(message)

        if self.state is not None:
            self.state.inflight = getattr(self.state, "inflight", 0) + 1
        try:
            if self.state is not None and getattr(self.state, "draining", False):
                await _refuse(scope, send_with_headers, "draining", retry_after=2)
            else:
                try:
                    async with asyncio.timeout(self.deadline):
                        await self.app(scope, receive, send_with_headers)
                except TimeoutError:
                    log.warning("request past its %.0f s deadline [%s]", self.deadline, rid)
                    if not status:
                        await _refuse(scope, send_with_headers, "deadline", retry_after=5)
                except asyncio.CancelledError:
                    # The server cancels what still runs when its shutdown grace is over: the
                    # transaction is rolled back (never committed); say so with a 503 the phone
                    # retries, rather than the server's bare 500 and a traceback.
                    if not (status == 0 and getattr(self.state, "draining", False)):
                        raise
                    log.warning("request still running at the end of the shutdown grace [%s]", rid)
                    await _refuse(scope, send_with_headers, "draining", retry_after=2)
        finally:
            if self.state is not None:
                self.state.inflight -= 1
            reset_language(lang_token)
            log.info(
                "%s %s -> %s in %.1f ms [%s]",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
                rid,
            )


async def _refuse(scope: Scope, send: Send, why: str, *, retry_after: int) -> None:
    """A 503 problem answer written straight to ASGI (outside the routes)."""
    from app.i18n import _

    detail = {
        "draining": _("This server is restarting: try again in a moment (nothing was lost)."),
        "deadline": _("The request took too long and was stopped; nothing was changed. Try again."),
    }[why]
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"retry-after", str(retry_after).encode()),
    ]
    if why == "draining":
        # This process is stopping: the client must not send its next request on this
        # connection (the server closes it once this answer is sent).
        headers.append((b"connection", b"close"))
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": _("Service unavailable"),
            "status": 503,
            "detail": detail,
            "instance": scope["path"],
            "retry_after": retry_after,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _drain_on_sigterm(state: Any) -> None:
    """Chain onto the server's SIGTERM handler: mark the app draining, then let it stop."""
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "_porte_drain", False):
        return

    def handler(signum: int, frame: Any) -> None:
        state.draining = True
        if callable(previous):
            previous(signum, frame)

    handler._porte_drain = True  # type: ignore[attr-defined]
    # Not the main thread (an app served in a test thread): nothing to chain.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, handler)


class ServiceRoleRefused(RuntimeError):
    """The service's database role could read across campaigns: production does not start."""


ROLE_CHECK_SECONDS = 30  # production waits this long for the database at start


async def _check_service_role(settings: Settings, db: Database) -> None:
    """Production refuses to serve when its role is a superuser, has BYPASSRLS or owns a campaign
    table (row-level security would not hold); other modes log the same finding as a warning."""
    production = settings.mode == "production"
    deadline = time.monotonic() + (ROLE_CHECK_SECONDS if production else 0)
    while True:
        try:
            found = await service_role_problems(db.engine)
            break
        except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
            if time.monotonic() >= deadline:
                if production:
                    log.error(
                        "database not reachable at start (%s): the service role cannot be "
                        "checked, refusing to serve",
                        exc,
                    )
                    raise ServiceRoleRefused(
                        _("The database could not be reached to check the service's role.")
                    ) from exc
                log.warning(
                    "database not reachable at start (%s); will retry on first request", exc
                )
                return
            await asyncio.sleep(1)
    if not found:
        return
    why = "; ".join(found)
    if production:
        message = _(
            "Refusing to serve: row-level security cannot isolate campaigns because {why}. "
            "Connect the service (DATABASE_URL) as a role that owns nothing and has no BYPASSRLS "
            "(porte_app, see deploy/initdb/01-porte.sql); migrations use OWNER_DATABASE_URL."
        ).format(why=why)
        log.error(message)
        raise ServiceRoleRefused(message)
    log.warning(
        "The service's database role could read across campaigns (%s): production would refuse "
        "to start with it.",
        why,
    )


def _lifespan(settings: Settings, db: Database) -> Any:
    """The app's lifespan: at start the collector frozen, the drain on SIGTERM, the service's
    role checked (outside test mode), the tile pool opened, the tile audit's writer started; at
    stop the running requests let finish (bounded), the audit flushed, the database closed."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Move everything loaded at start-up (routes, models, SQL) out of the collector's reach:
        # full collections then scan only per-request garbage, which keeps latency tails short.
        gc.collect()
        gc.freeze()
        app.state.draining = False
        app.state.inflight = 0
        _drain_on_sigterm(app.state)
        if settings.mode != "test":
            try:
                await _check_service_role(settings, db)
            except ServiceRoleRefused:
                await db.dispose()
                raise
        try:  # open the map tiles' connections now rather than under the first burst
            await db.hot_pool()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("database not reachable at start (%s); will retry on first request", exc)
        tile_audit_writer = asyncio.create_task(app.state.tile_audit.run())
        yield
        # At shutdown the server has cancelled the requests still running past its grace period;
        # let them roll back and send their 503 before the connections go (bounded).
        deadline = time.monotonic() + 5
        while app.state.inflight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        tile_audit_writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tile_audit_writer
        await app.state.tile_audit.flush(everything=True)  # a clean stop loses no audit window
        await db.dispose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for these settings (tests pass their own).

    Outside test mode the secrets are checked before anything else (missing, public, short or
    malformed ones stop the start); development and demo take the missing ones from the local
    secrets file and say so in the log.
    """
    settings = with_local_secrets(settings or get_settings())
    check_secrets(settings)
    announce_once(settings, log.warning)
    db = Database(settings, replica=Replica(settings) if settings.replica_url else None)

    lifespan = _lifespan(settings, db)

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
    app.state.inflight = 0  # requests being served (RequestContext); shutdown waits for them
    app.state.db = db
    app.state.verified_tokens = {}  # bearer token -> (caller, expiry): see optional_principal
    from app.services.field.tile_cache import TileCache

    app.state.tile_cache = TileCache(settings.tile_cache_mb * 1024 * 1024)
    from app.services.field.basemap import BasemapStore

    app.state.basemap = BasemapStore(settings.basemap)
    from app.services.field.tile_audit import TileAudit

    app.state.tile_audit = TileAudit(db, settings)

    install_error_handlers(app)
    if db.replica is not None:
        # Lag-tolerant reads on the streaming replica; a GET it cannot serve runs again on the
        # primary, inside the request's deadline (app.replica).
        from app.replica import ReplicaFallback, ReplicaRetry, retry_response

        app.add_exception_handler(ReplicaRetry, retry_response)
        app.add_middleware(ReplicaFallback)

    app.add_middleware(
        RequestContext,
        production=settings.mode == "production",
        lang=settings.lang,
        deadline=settings.request_deadline_s,
        state=app.state,
        csp=content_security_policy(settings.basemap_raster_origin),
    )
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
