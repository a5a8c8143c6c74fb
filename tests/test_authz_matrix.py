"""The authorization matrix: every route of the real app × every kind of caller.

Routes come from ``app.routes`` (static mounts and FastAPI's own docs routes excluded), so a route
added by anyone is covered as soon as it exists. The expected answer comes from
``app.authz.ROUTE_ROLES`` alone:

- a route missing from the table fails ``test_every_route_is_in_the_table``;
- anonymous callers get 401 on every non-public route;
- a caller of another campaign gets 404 on every campaign route (existence does not leak);
- a role outside the route's set gets 403; an allowed role never gets 401/403 (404/422 are fine:
  path ids and bodies are made up), never a 5xx, and never sees the other campaign's ids or name;
- invite sessions act as volunteers; expired or revoked invites get 401 on campaign routes;
  invite sessions get 403 on account-only (SIGNED_IN) routes;
- server-level rights (SERVER_ADMIN, CAMPAIGN_CREATOR): only the ``server_admin`` caller (an
  account with that right and no campaign) is let in; every other account gets 403.
"""

from __future__ import annotations

import enum
import json
import re
import typing
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from app.authz import PUBLIC, ROLES, ROUTE_ROLES, SERVER_RIGHTS, SIGNED_IN
from app.security import SCOPE_DEPENDENCIES, server_right
from tests.factories import bearer, make_invite, make_user, make_world
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for

PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
CALLERS = (
    "anonymous",
    *ROLES,
    "outsider",
    "server_admin",
    "invite",
    "expired_invite",
    "revoked_invite",
)


def _flat_routes(app) -> list:
    """Every route of the app, with included routers flattened (FastAPI >= 0.16x keeps them
    nested in ``app.routes``)."""
    try:
        from fastapi.routing import _iter_included_route_candidates
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(_iter_included_route_candidates(app.routes))


def _routes_of(app) -> list[tuple[str, APIRoute]]:
    out = []
    for route in _flat_routes(app):
        if not isinstance(route, APIRoute):
            continue  # static mounts, /openapi.json, /docs
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            out.append((method, route))
    return out


def _collection_app():
    """The real app, built only to list its routes at collection time (no connection made)."""
    from app.config import Settings
    from app.main import create_app

    return create_app(
        Settings(
            mode="test",
            database_url="postgresql://nobody@127.0.0.1:1/none",
            owner_database_url="postgresql://nobody@127.0.0.1:1/none",
        )
    )


ROUTES = [(m, r.path) for m, r in _routes_of(_collection_app())]


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _depends_on_scope(dependant) -> bool:
    return any(d.call in SCOPE_DEPENDENCIES or _depends_on_scope(d) for d in dependant.dependencies)


def _all_path_params(dependant) -> list:
    params = list(dependant.path_params)
    for d in dependant.dependencies:
        params.extend(_all_path_params(d))
    return params


def _made_up(annotation) -> str:
    """A value that passes the parameter's type (so that authorization, not parsing, answers)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str(next(iter(annotation)).value)
    adapter = TypeAdapter(annotation)
    for candidate in (str(uuid.uuid4()), "1", "X", "json", "mvt", "csv"):
        try:
            adapter.validate_python(candidate)
            return candidate
        except Exception:  # noqa: BLE001 - try the next candidate
            continue
    return "X"


def _url(route: APIRoute, campaign_id: uuid.UUID) -> str:
    types = {p.name: p.field_info.annotation for p in _all_path_params(route.dependant)}

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name == "campaign_id":
            return str(campaign_id)
        return _made_up(types.get(name, str))

    return PARAM.sub(fill, route.path)


@dataclass
class Matrix:
    campaign_id: uuid.UUID
    headers: dict[str, dict[str, str]]
    forbidden: list[str]  # strings of the other campaign that must never appear


@pytest.fixture(scope="module")
async def matrix(access_owner, access_settings) -> Matrix:
    a = await make_world(access_owner, access_settings)
    b = await make_world(access_owner, access_settings)
    await make_invite(access_owner, access_settings, b.campaign_id)  # data in B to leak, if any
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    headers.update(a.headers)
    headers["outsider"] = b.headers["admin"]
    headers["server_admin"] = bearer(
        access_settings, await make_user(access_owner, server_admin=True)
    )
    headers["invite"] = (await make_invite(access_owner, access_settings, a.campaign_id))[1]
    headers["expired_invite"] = (
        await make_invite(
            access_owner, access_settings, a.campaign_id, expires_in=-timedelta(hours=1)
        )
    )[1]
    headers["revoked_invite"] = (
        await make_invite(access_owner, access_settings, a.campaign_id, revoked=True)
    )[1]
    async with access_owner.connect() as conn:
        from sqlalchemy import text

        b_name = (
            await conn.execute(
                text("SELECT name FROM campaign WHERE id = :c"), {"c": b.campaign_id}
            )
        ).scalar_one()
    forbidden = [str(b.campaign_id), b_name, *(str(u) for u in b.users.values())]
    return Matrix(a.campaign_id, headers, forbidden)


def expected(rule, caller: str, route_is_campaign: bool) -> str:
    """'allow', or the exact status code as a string."""
    invite = caller.endswith("invite")
    if rule == PUBLIC:
        return "allow"
    if caller == "anonymous":
        return "401"
    if rule == SIGNED_IN:
        return "403" if invite else "allow"
    if rule in SERVER_RIGHTS:
        return "allow" if caller == "server_admin" else "403"
    assert route_is_campaign
    if caller in ("outsider", "server_admin"):  # a server admin is no member of the campaign
        return "404"
    if caller in ("expired_invite", "revoked_invite"):
        return "401"
    role = "volunteer" if invite else caller
    return "allow" if role in rule else "403"


def test_the_walk_sees_the_routes():
    from starlette.routing import Mount, Route, WebSocketRoute

    assert ("GET", "/campaigns/{campaign_id}") in ROUTES and ("POST", "/auth/token") in ROUTES
    unknown = [
        type(r).__name__
        for r in _flat_routes(_collection_app())
        if not isinstance(r, APIRoute | Route | Mount | WebSocketRoute)
    ]
    assert not unknown, f"route containers the matrix cannot walk: {unknown}"


def test_every_route_is_in_the_table():
    missing = [f"{m} {p}" for m, p in ROUTES if (m, p) not in ROUTE_ROLES]
    assert not missing, (
        "Routes missing from app.authz.ROUTE_ROLES (add a line in your issue's section): "
        + ", ".join(missing)
    )


def test_campaign_routes_use_the_campaign_scope():
    app = _collection_app()
    wrong = []
    for method, route in _routes_of(app):
        rule = ROUTE_ROLES.get((method, route.path))
        scoped = _depends_on_scope(route.dependant)
        if route.path.startswith("/campaigns/{campaign_id}") and not scoped:
            wrong.append(f"{method} {route.path}: campaign route without CampaignScope")
        if isinstance(rule, frozenset) and not scoped:
            wrong.append(f"{method} {route.path}: role rule but nothing enforces it")
        if scoped and not isinstance(rule, frozenset) and rule is not None:
            wrong.append(f"{method} {route.path}: CampaignScope needs a set of roles, not {rule}")
        if rule in SERVER_RIGHTS and not _depends_on(route.dependant, server_right):
            wrong.append(f"{method} {route.path}: server-level rule but nothing enforces it")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_answers_what_the_table_says(method, path, matrix, access_app):
    route = next(r for m, r in _routes_of(access_app) if m == method and r.path == path)
    rule = ROUTE_ROLES.get((method, path))
    if rule is None:
        pytest.fail(f"{method} {path} is missing from ROUTE_ROLES")
    url = _url(route, matrix.campaign_id)
    is_campaign = _depends_on_scope(route.dependant)
    problems = []
    async with client_for(access_app) as c:
        for caller in CALLERS:
            kwargs = {"headers": matrix.headers[caller]}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["content"] = json.dumps({})
                kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
            r = await c.request(method, url, **kwargs)
            want = expected(rule, caller, is_campaign)
            got = r.status_code
            if got >= 500:
                problems.append(f"{caller}: {got} {r.text[:200]}")
            elif want == "allow":
                if got in (401, 403):
                    problems.append(f"{caller}: allowed by the table but got {got} {r.text[:200]}")
                elif got < 300 and caller not in ("outsider", "server_admin"):
                    # B's own data is B's to see; a server admin lists accounts (not campaigns)
                    leaked = [s for s in matrix.forbidden if s in r.text]
                    if leaked:
                        problems.append(f"{caller}: 2xx shows another campaign's data {leaked}")
            elif str(got) != want:
                problems.append(f"{caller}: expected {want}, got {got} {r.text[:200]}")
    assert not problems, f"{method} {url} (rule {rule}):\n" + "\n".join(problems)
