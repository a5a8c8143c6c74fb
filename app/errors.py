"""Domain errors and their HTTP form (RFC 9457 problem details)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# The web framework and the database library are imported where the handlers are installed:
# command-line tools (imports, keys, purge) raise these errors without loading either.
if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import JSONResponse

    from app.dbfaults import Unavailable

from app.i18n import N_, _

log = logging.getLogger("porte")
PROBLEM = "application/problem+json"


class PorteError(Exception):
    """Base of every error a user can be told about. A subclass says its HTTP status and the
    problem's title in its class line: ``class Gone(PorteError, status=410, title=N_("Gone"))``
    (or as class attributes)."""

    status = 400
    title = N_("Bad request")

    def __init_subclass__(
        cls, *, status: int | None = None, title: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(
        self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}


class InvalidInput(PorteError, status=422, title=N_("Invalid input")):
    """The request is well-formed but a value is wrong (422)."""


class NotFound(PorteError, status=404, title=N_("Not found")):
    """Nothing there, or nothing the caller may know of (404)."""


class Conflict(PorteError, status=409, title=N_("Conflict")):
    """The request clashes with what is stored (409)."""


class Unauthorized(PorteError, status=401, title=N_("Not signed in")):
    """No valid credentials (401)."""


class Forbidden(PorteError, status=403, title=N_("Forbidden")):
    """Signed in, but this role may not do that (403)."""


class TooManyRequests(PorteError, status=429, title=N_("Too many requests")):
    """Rate limit reached (429)."""

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(PorteError, status=503, title=N_("Service unavailable")):
    """A part the service needs (database, mail server) is unavailable for now (503)."""

    def __init__(self, detail: str, *, retry_after: int = 5):
        super().__init__(detail)
        self.retry_after = retry_after


class ImportFailed(PorteError, status=422, title=N_("Import refused")):
    """An import was refused; nothing was stored."""


def problem(
    status: int, title: str, detail: str, request: Request | None = None, **extra: Any
) -> JSONResponse:
    """Build an RFC 9457 problem response."""
    from starlette.responses import JSONResponse

    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def unavailable(request: Request | None, down: Unavailable) -> JSONResponse:
    """503 with Retry-After for a database that cannot serve now; one log line, no traceback."""
    from app.i18n import _

    rid = getattr(request.state, "request_id", "-") if request is not None else "-"
    where = f"{request.method} {request.url.path}" if request is not None else "-"
    log.warning("503 on %s: %s (request %s)", where, down.reason, rid)
    resp = problem(
        503,
        _("Service unavailable"),
        _(
            "The database cannot answer right now ({reason}). Nothing you sent was lost: "
            "try again in {seconds} s (the phone's queue does so by itself)."
        ).format(reason=down.said(), seconds=down.retry_after),
        request,
        retry_after=down.retry_after,
    )
    resp.headers["Retry-After"] = str(down.retry_after)
    return resp


def describe_db_error(exc: BaseException) -> str:
    """A database error for the log, without any value from the data: the driver's class, the
    SQLSTATE, the constraint, the statement (its text, never its binds) and the code's frames.

    The driver's own message is left out on purpose: it may quote a value ("invalid input for
    query argument $1: '12 rue …'", "invalid input syntax for type integer: …"). Engines also
    hide the binds (``hide_parameters``, app.db.make_engine).
    """
    import traceback

    orig = getattr(exc, "orig", None) or exc
    driver = getattr(orig, "driver_exception", None) or getattr(orig, "__cause__", None) or orig
    state = next(
        (
            str(v)
            for e in (orig, driver)
            for v in (getattr(e, "sqlstate", None), getattr(e, "pgcode", None))
            if v
        ),
        "-",
    )
    constraint = getattr(driver, "constraint_name", None) or getattr(orig, "constraint_name", None)
    statement = " ".join(str(getattr(exc, "statement", "") or "").split())[:300]
    frames = "".join(traceback.format_tb(exc.__traceback__)[-6:]) if exc.__traceback__ else ""
    return (
        f"{type(driver).__name__} (SQLSTATE {state}"
        + (f", constraint {constraint}" if constraint else "")
        + ")"
        + (f" in: {statement}" if statement else "")
        + (f"\n{frames}" if frames else "")
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations from exceptions to problem responses.

    Long because it declares one handler per family of exception (the service's own, validation,
    HTTP, database, the rest), each a few lines, in the one place that says how errors answer."""
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy.exc import DBAPIError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from app.dbfaults import classify

    @app.exception_handler(PorteError)
    async def _porte(request: Request, exc: PorteError) -> JSONResponse:
        resp = problem(exc.status, _(exc.title), exc.detail, request, field=exc.field, **exc.extra)
        if isinstance(exc, TooManyRequests | ServiceUnavailable):
            resp.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        from app.validation import reason

        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
            errors.append(
                {"field": ".".join(loc) or "body", "reason": reason(err), "type": err.get("type")}
            )
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:10])
        first = errors[0]["field"] if errors else None
        return problem(422, _("Invalid input"), detail, request, field=first, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            404: N_("Not found"),
            405: N_("Method not allowed"),
            401: N_("Not signed in"),
        }
        # Starlette's own details (an unknown route or method) are its reason phrases.
        details = {
            "Not Found": N_("Nothing here: check the address (the API is described at /docs)."),
            "Method Not Allowed": N_(
                "This address does not take this method: check the API description (/docs)."
            ),
        }
        detail = str(exc.detail)
        resp = problem(
            exc.status_code,
            _(titles.get(exc.status_code, N_("Error"))),
            _(details[detail]) if detail in details else detail,
            request,
        )
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 (data exception): a value the database cannot take (a number out of
        # range, a NUL character, an impossible date). That is bad input, not a server fault;
        # routes should validate first, this is the safety net.
        state = None
        for err in (exc.orig, getattr(exc.orig, "driver_exception", None), exc.orig.__cause__):
            state = state or getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if state and str(state).startswith("22"):
            rid = getattr(request.state, "request_id", "-")
            # The driver's message may quote the value sent: never log it (personal data).
            log.warning(
                "data exception %s on %s %s (request %s)",
                state,
                request.method,
                request.url.path,
                rid,
            )
            return problem(
                422,
                _("Invalid input"),
                _(
                    "A value cannot be stored: a number out of range, a NUL character or an "
                    "impossible date. Check the values sent; nothing was changed."
                ),
                request,
            )
        return _logged_db_error(request, exc)

    def _logged_db_error(request: Request, exc: Exception) -> JSONResponse:
        down = classify(exc)
        if down is not None:
            return unavailable(request, down)
        rid = getattr(request.state, "request_id", "-")
        # Not log.exception: the driver's message may quote a value sent (personal data).
        log.error(
            "database error on %s %s (request %s): %s",
            request.method,
            request.url.path,
            rid,
            describe_db_error(exc),
        )
        return _internal(request, rid)

    async def _driver(request: Request, exc: Exception) -> JSONResponse:
        # Raised outside SQLAlchemy (the tiles' asyncpg pool, a socket): 503 when the database
        # cannot serve now. Handled here, not by the catch-all below, whose errors Starlette
        # re-raises to the server (a traceback in the log for a mere outage).
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            return _logged_db_error(request, exc)
        down = classify(exc)
        if down is not None:
            return unavailable(request, down)
        return await _unexpected(request, exc)

    import asyncpg
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    for cls in (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, PoolTimeout):
        app.add_exception_handler(cls, _driver)

    def _internal(request: Request, rid: str) -> JSONResponse:
        return problem(
            500,
            _("Internal error"),
            _(
                "Something went wrong on our side. Nothing was changed. Quote request id {rid} "
                "to the campaign admin."
            ).format(rid=rid),
            request,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Served outside the middleware that chose the request's language: choose it again.
        from app.i18n import negotiate, reset_language, set_language

        default = getattr(getattr(request.app.state, "settings", None), "lang", None)
        token = set_language(negotiate(request.headers.get("accept-language"), default or "fr"))
        try:
            return await _unexpected_answer(request, exc)
        finally:
            reset_language(token)

    async def _unexpected_answer(request: Request, exc: Exception) -> JSONResponse:
        rid = getattr(request.state, "request_id", "-")
        down = classify(exc)
        if down is not None:
            return unavailable(request, down)
        log.exception(
            "unhandled error on %s %s (request %s)", request.method, request.url.path, rid
        )
        return _internal(request, rid)
