"""Sign-in and sessions: throttling that cannot lock the owner out, codes throttled
like passwords, sign-ins that end at once, refresh chains that end, the real client behind a
proxy, and `porte admin` without a prompt."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
from sqlalchemy import text

from app.main import create_app
from tests.factories import PASSWORD, make_campaign, make_invite, make_user, make_world
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email
from tests.fixtures_browser import free_port

LIMIT = 5
EN = {"Accept-Language": "en"}


async def _sign_in(c, email, password=PASSWORD, **extra):
    return await c.post("/auth/token", data={"username": email, "password": password, **extra})


def _bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def _enrolled(c, email) -> tuple[dict, pyotp.TOTP]:
    """Sign in, enrol an authenticator; (headers, its TOTP) - not yet confirmed."""
    r = await _sign_in(c, email)
    assert r.status_code == 200, r.text
    h = _bearer(r.json())
    enrol = await c.post("/auth/totp/enrol", headers=h)
    assert enrol.status_code == 200, enrol.text
    return h, pyotp.TOTP(enrol.json()["secret"])


def _wrong(totp: pyotp.TOTP) -> str:
    """A 6-digit code that matches no step within the drift window."""
    now = datetime.now(UTC)
    near = {totp.at(now + timedelta(seconds=30 * k)) for k in range(-2, 3)}
    return next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in near)


# ---------------------------------------------------------------- throttling
async def test_someone_elses_wrong_passwords_never_lock_the_owner_out(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as owner:
        h, totp = await _enrolled(owner, email)
        ok = await owner.post("/auth/totp/confirm", headers=h, json={"code": totp.now()})
        assert ok.status_code == 204, ok.text
    async with client_for(access_app) as attacker:
        for _ in range(LIMIT):
            assert (await _sign_in(attacker, email, "guess")).status_code == 401
        # The attacking address is blocked, even when it finds the password.
        assert (await _sign_in(attacker, email)).status_code == 429
    async with client_for(access_app) as second:  # the account is under attack: one guess each
        assert (await _sign_in(second, email, "guess")).status_code == 401
        refused = await _sign_in(second, email)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    # The owner, from an address without failures, signs in with password and code.
    async with client_for(access_app) as owner:
        need = await _sign_in(owner, email)
        assert need.status_code == 401 and need.json()["totp_required"] is True
        code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
        r = await _sign_in(owner, email, totp=code)
        assert r.status_code == 200, r.text


async def test_second_factor_codes_are_throttled_on_and_off(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        h, totp = await _enrolled(c, email)
        bad = _wrong(totp)
        for _ in range(LIMIT):
            r = await c.post("/auth/totp/confirm", headers=h, json={"code": bad})
            assert r.status_code == 422 and r.json()["field"] == "code", r.text
        blocked = await c.post("/auth/totp/confirm", headers=h, json={"code": totp.now()})
        assert blocked.status_code == 429, blocked.text
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # Another address (the owner's phone) is not blocked by those failures.
    async with client_for(access_app) as c:
        r = await _sign_in(c, email)
        h = _bearer(r.json())
        ok = await c.post("/auth/totp/confirm", headers=h, json={"code": totp.now()})
        assert ok.status_code == 204, ok.text
    async with client_for(access_app) as thief:  # a stolen session trying to turn it off
        code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
        signed = await _sign_in(thief, email, totp=code)
        assert signed.status_code == 200, signed.text
        th = _bearer(signed.json())
        # Codes of this account already failed five times this minute (elsewhere): this address
        # gets one guess, then nothing, not even the right code.
        r = await thief.post("/auth/totp/disable", headers=th, json={"code": _wrong(totp)})
        assert r.status_code == 422
        r = await thief.post("/auth/totp/disable", headers=th, json={"code": totp.now()})
        assert r.status_code == 429
    async with access_owner.connect() as conn:
        on = (
            await conn.execute(
                text("SELECT totp_enabled FROM app_user WHERE email = :e"), {"e": email}
            )
        ).scalar_one()
    assert on is True


# ---------------------------------------------------------------- sessions that end at once
def _tile(cid) -> str:
    return f"/campaigns/{cid}/tiles/turfs/14/8294/5634.mvt"  # the hot path (plain asyncpg)


async def _works(c, h, cid) -> list[int]:
    """Status of an account route, a campaign route and a map tile with these headers."""
    return [
        (await c.get("/auth/me", headers=h)).status_code,
        (await c.get(f"/campaigns/{cid}", headers=h)).status_code,
        (await c.get(_tile(cid), headers=h)).status_code,
    ]


async def test_logout_ends_the_accounts_access_tokens_at_once(access_app, access_owner):
    email = new_email()
    uid = await make_user(access_owner, email)
    cid = await make_campaign(access_owner, members={uid: "organiser"})
    async with client_for(access_app) as c:
        a = (await _sign_in(c, email)).json()  # e.g. the laptop
        b = (await _sign_in(c, email)).json()  # e.g. the phone
        assert await _works(c, _bearer(a), cid) == [200, 200, 204]
        assert (
            await c.post("/auth/logout", json={"refresh_token": a["refresh_token"]})
        ).status_code == 204
        # A's access token ends now, everywhere (the verified-token cache included).
        assert await _works(c, _bearer(a), cid) == [401, 401, 401]
        assert (
            await c.post("/auth/refresh", json={"refresh_token": a["refresh_token"]})
        ).status_code == 401
        # B's current access token too; B's sign-in goes on with its next refresh.
        assert (await c.get("/auth/me", headers=_bearer(b))).status_code == 401
        b2 = await c.post("/auth/refresh", json={"refresh_token": b["refresh_token"]})
        assert b2.status_code == 200, b2.text
        assert await _works(c, _bearer(b2.json()), cid) == [200, 200, 204]


async def test_a_new_password_ends_every_sign_in(
    access_app, access_owner, access_urls, monkeypatch
):
    from typer.testing import CliRunner

    from app.cli import cli

    email = new_email()
    uid = await make_user(access_owner, email)
    cid = await make_campaign(access_owner, members={uid: "admin"})
    async with client_for(access_app) as c:
        a = (await _sign_in(c, email)).json()
        b = (await _sign_in(c, email)).json()
        wrong = await c.post(
            "/auth/password",
            headers=_bearer(a),
            json={"current_password": "not it", "new_password": "a brand new password"},
        )
        assert wrong.status_code == 422 and wrong.json()["field"] == "current_password"
        short = await c.post(
            "/auth/password",
            headers=_bearer(a),
            json={"current_password": PASSWORD, "new_password": "short"},
        )
        assert short.status_code == 422 and short.json()["field"] == "new_password"
        changed = await c.post(
            "/auth/password",
            headers=_bearer(a),
            json={"current_password": PASSWORD, "new_password": "a brand new password"},
        )
        assert changed.status_code == 200, changed.text
        new = changed.json()
        for old in (a, b):
            assert await _works(c, _bearer(old), cid) == [401, 401, 401]
            r = await c.post("/auth/refresh", json={"refresh_token": old["refresh_token"]})
            assert r.status_code == 401
        assert await _works(c, _bearer(new), cid) == [200, 200, 204]
        assert (await _sign_in(c, email, "a brand new password")).status_code == 200

        # The same from the server's shell, without a prompt (`--password-stdin`).
        monkeypatch.setenv("PORTE_DATABASE_URL", access_urls.app)
        monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", access_urls.owner)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["admin", "password", email, "--password-stdin"],
            input="set from a script 42\n",
        )
        assert result.exit_code == 0, result.output
        assert "set from a script" not in result.output
        assert await _works(c, _bearer(new), cid) == [401, 401, 401]
        assert (await _sign_in(c, email, "set from a script 42")).status_code == 200


async def test_removal_and_disabling_end_access_at_once(access_app, access_owner, access_settings):
    w = await make_world(access_owner, access_settings)
    async with client_for(access_app) as c:
        org = w.headers["organiser"]
        assert (await c.get(_tile(w.campaign_id), headers=org)).status_code == 204
        gone = await c.delete(w.url(f"/members/{w.users['organiser']}"), headers=w.headers["admin"])
        assert gone.status_code == 204
        assert (await c.get(w.url(), headers=org)).status_code == 404
        assert (await c.get(_tile(w.campaign_id), headers=org)).status_code == 404
        async with access_owner.begin() as conn:
            await conn.execute(
                text("UPDATE app_user SET is_active = false WHERE id = :u"),
                {"u": w.users["analyst"]},
            )
        # A disabled account's token ends (401, sign in again), not "no such campaign".
        r = await c.get(w.url(), headers=w.headers["analyst"])
        assert r.status_code == 401, r.text


async def test_a_refresh_chain_ends_after_session_max_days(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        first = (await _sign_in(c, email)).json()
        second = (
            await c.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        ).json()
        async with access_owner.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT r.expires_at, r.session_started_at FROM refresh_token r "
                        "JOIN app_user u ON u.id = r.user_id WHERE u.email = :e"
                    ),
                    {"e": email},
                )
            ).all()
        assert len(rows) == 2 and len({r.session_started_at for r in rows}) == 1
        for r in rows:  # no token of the chain outlives the sign-in's end
            assert r.expires_at <= r.session_started_at + timedelta(days=30)
        # The chain began 31 days ago: refreshing, however recently done, ends it.
        async with access_owner.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE refresh_token SET session_started_at = now() - interval '31 days' "
                    "WHERE user_id = (SELECT id FROM app_user WHERE email = :e)"
                ),
                {"e": email},
            )
        r = await c.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert r.status_code == 401, r.text


# ---------------------------------------------------------------- behind a reverse proxy
@contextmanager
def _served(app, **options):
    """The app under uvicorn on 127.0.0.1 with ``porte serve``'s options for the proxy (its
    start-up and shut-down run in the server's own event loop: one app per server)."""
    import uvicorn

    from app.commands.serve import uvicorn_options

    port = free_port()
    opts = uvicorn_options(host="127.0.0.1", port=port, workers=1, **options)
    opts.pop("workers")
    opts["log_level"] = "warning"
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **opts))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _guesses(url: str, forwarded: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url) as c:
        out = []
        for _ in range(n):
            r = await c.post(
                "/auth/token",
                data={"username": new_email(), "password": "guess"},
                headers={"X-Forwarded-For": forwarded},
            )
            out.append(r.status_code)
        return out


async def test_behind_a_proxy_the_real_client_is_throttled_and_audited(
    access_urls, access_owner, access_settings
):
    from app.services.access.invites import invite_token
    from tests.conftest import make_settings

    settings = make_settings(access_urls, db_pool_size=2)
    w = await make_world(access_owner, access_settings)
    invite_id, _h = await make_invite(access_owner, access_settings, w.campaign_id)
    token = invite_token(access_settings, w.campaign_id, invite_id)
    with _served(create_app(settings), proxy_headers=True, forwarded_allow_ips="127.0.0.1") as url:
        assert await _guesses(url, "203.0.113.10", LIMIT + 1) == [401] * LIMIT + [429]
        # Another client behind the same proxy is not blocked by the first one.
        assert await _guesses(url, "203.0.113.11", 1) == [401]
        async with httpx.AsyncClient(base_url=url) as c:
            opened = await c.post(
                "/auth/invite",
                json={"token": token},
                headers={"X-Forwarded-For": "198.51.100.7"},
            )
            assert opened.status_code == 200, opened.text
    # A proxy that is not trusted cannot choose the address: its own is used.
    with _served(create_app(settings), proxy_headers=True, forwarded_allow_ips="192.0.2.1") as url:
        assert await _guesses(url, "203.0.113.12", 1) == [401]
    async with access_owner.connect() as conn:
        clients = {
            r.client
            for r in await conn.execute(
                text(
                    "SELECT client FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'access.invite.open'"
                ),
                {"c": w.campaign_id},
            )
        }
        failures = {
            r.client
            for r in await conn.execute(
                text("SELECT DISTINCT client FROM auth_failure WHERE client LIKE '203.0.113.%'")
            )
        }
    assert clients == {"198.51.100.7"}
    assert failures == {"203.0.113.10", "203.0.113.11"}, "12 came through an untrusted proxy"


def test_porte_serve_takes_the_proxy_options_and_warns_about_local_keys(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from app.cli import cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setenv("PORTE_MODE", "development")
    monkeypatch.setenv("PORTE_DB_DIR", str(tmp_path / "db"))
    monkeypatch.delenv("PORTE_SECRETS_FILE", raising=False)
    result = CliRunner().invoke(
        cli, ["serve", "--proxy-headers", "--forwarded-allow-ips", "172.16.0.0/12"]
    )
    assert result.exit_code == 0, result.output
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "172.16.0.0/12"
    assert str(tmp_path / "db" / "porte-secrets.json") in result.output
    # Without the option, no forwarded header is trusted.
    seen.clear()
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert seen["proxy_headers"] is False and "forwarded_allow_ips" not in seen
    # From the environment (compose).
    monkeypatch.setenv("PORTE_PROXY_HEADERS", "true")
    monkeypatch.setenv("PORTE_FORWARDED_ALLOW_IPS", "10.0.0.2")
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "10.0.0.2"


async def test_admin_create_without_a_prompt(access_urls, access_app, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setenv("PORTE_DATABASE_URL", access_urls.app)
    monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", access_urls.owner)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": (_ for _ in ()).throw(EOFError))
    email = new_email()
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["admin", "create", email, "--password-stdin", "--can-create-campaigns"],
        input="provisioned password 1\n",
    )
    assert result.exit_code == 0, result.output
    assert "provisioned password" not in result.output
    short = await asyncio.to_thread(
        CliRunner().invoke, cli, ["admin", "create", new_email(), "--password-stdin"], input="x\n"
    )
    assert short.exit_code == 2
    async with client_for(access_app) as c:
        r = await _sign_in(c, email, "provisioned password 1")
        assert r.status_code == 200, r.text
        created = await c.post(
            "/campaigns",
            headers=_bearer(r.json()),
            json={"name": f"Scripted {uuid.uuid4().hex[:6]}", "election_date": "2032-03-14"},
        )
        assert created.status_code == 201, created.text
