"""Sign-in, tokens, refresh rotation, throttling, TOTP, production hardening."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import pytest
from sqlalchemy import text

from app.config import DEFAULT_SECRET, Settings
from app.security import encode_token
from tests.factories import PASSWORD, make_campaign, make_user
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email


async def _sign_in(c, email, password=PASSWORD, **extra):
    return await c.post("/auth/token", data={"username": email, "password": password, **extra})


async def test_sign_in_refresh_rotation_and_reuse_revokes_family(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        r = await _sign_in(c, email.upper())  # e-mails are case-insensitive
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 15 * 60
        me = await c.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == email

        first = body["refresh_token"]
        r2 = await c.post("/auth/refresh", json={"refresh_token": first})
        assert r2.status_code == 200, r2.text
        second = r2.json()["refresh_token"]
        assert second != first
        # The first token was rotated: presenting it again is a theft signal.
        reuse = await c.post("/auth/refresh", json={"refresh_token": first})
        assert reuse.status_code == 401
        assert "déjà servi" in reuse.json()["detail"]
        # ...and the whole family is revoked, including the legitimate latest token.
        after = await c.post("/auth/refresh", json={"refresh_token": second})
        assert after.status_code == 401
        junk = await c.post("/auth/refresh", json={"refresh_token": "nope"})
        assert junk.status_code == 401


async def test_logout_ends_refresh(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        tok = (await _sign_in(c, email)).json()["refresh_token"]
        assert (await c.post("/auth/logout", json={"refresh_token": tok})).status_code == 204
        assert (await c.post("/auth/refresh", json={"refresh_token": tok})).status_code == 401


async def test_unknown_account_and_wrong_password_answer_the_same(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        wrong = await _sign_in(c, email, "not the password")
        ghost = await _sign_in(c, new_email(), "not the password")
    assert wrong.status_code == ghost.status_code == 401
    strip = ("instance", "request_id")
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in ghost.json().items() if k not in strip
    }
    assert wrong.headers["www-authenticate"] == ghost.headers["www-authenticate"] == "Bearer"


async def test_rate_limit_per_account_and_per_address(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        for _ in range(5):
            assert (await _sign_in(c, email, "bad")).status_code == 401
        blocked = await _sign_in(c, email)  # this address is blocked, even with the password
        assert blocked.status_code == 429, blocked.text
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert blocked.headers["content-type"].startswith("application/problem+json")
    # The owner, from an address without failures, is let in (docs/access.md, throttling).
    async with client_for(access_app) as other:
        assert (await _sign_in(other, email)).status_code == 200
        other_email = new_email()
        await make_user(access_owner, other_email)
        assert (await _sign_in(other, other_email)).status_code == 200
    # Per address: guessing many accounts from one address is refused too.
    async with client_for(access_app) as sprayer:
        for _ in range(5):
            assert (await _sign_in(sprayer, new_email(), "bad")).status_code == 401
        r = await _sign_in(sprayer, other_email)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


async def test_rejected_tokens(access_app, access_owner, access_settings):
    uid = await make_user(access_owner)
    good = encode_token(
        access_settings, {"sub": str(uid), "typ": "access", "ver": 0}, timedelta(minutes=5)
    )
    expired = encode_token(
        access_settings, {"sub": str(uid), "typ": "access", "ver": 0}, timedelta(seconds=-5)
    )
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = f"{head}.{forged}.{sig}"
    now = int(datetime.now(UTC).timestamp())
    body = {"sub": str(uid), "typ": "access", "ver": 0, "iat": now, "exp": now + 300}
    alg_none = jwt.encode(body, None, algorithm="none")
    other_key = jwt.encode(body, "another-secret-key-" + "y" * 32, algorithm="HS256")
    hs512 = jwt.encode(body, access_settings.secret_key, algorithm="HS512")
    wrong_type = jwt.encode(
        {**body, "typ": "refresh"}, access_settings.secret_key, algorithm="HS256"
    )
    async with client_for(access_app) as c:
        ok = await c.get("/auth/me", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200, ok.text
        for name, tok in [
            ("expired", expired),
            ("tampered", tampered),
            ("alg none", alg_none),
            ("other key", other_key),
            ("HS512", hs512),
            ("wrong type", wrong_type),
            ("garbage", "not.a.jwt"),
        ]:
            r = await c.get("/auth/me", headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 401, (name, r.status_code, r.text)
            assert "Traceback" not in r.text


async def test_disabled_account_is_refused(access_app, access_owner, access_settings):
    from tests.factories import bearer

    uid = await make_user(access_owner)
    async with access_owner.begin() as conn:
        await conn.execute(text("UPDATE app_user SET is_active = false WHERE id = :u"), {"u": uid})
    async with client_for(access_app) as c:
        r = await c.get("/auth/me", headers=bearer(access_settings, uid))
        assert r.status_code == 401


async def test_totp_enrol_sign_in_replay_and_required_campaign(access_app, access_owner):
    email = new_email()
    uid = await make_user(access_owner, email)
    cid = await make_campaign(access_owner, members={uid: "organiser"})
    async with access_owner.begin() as conn:
        await conn.execute(text("UPDATE campaign SET require_2fa = true WHERE id = :c"), {"c": cid})
    async with client_for(access_app) as c:
        tok = (await _sign_in(c, email)).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        # The campaign requires a second factor: refused until the account has one.
        refused = await c.get(f"/campaigns/{cid}", headers=h)
        assert refused.status_code == 403 and "double authentification" in refused.json()["detail"]

        enrol = await c.post("/auth/totp/enrol", headers=h)
        assert enrol.status_code == 200, enrol.text
        secret = enrol.json()["secret"]
        assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
        assert "<svg" in enrol.json()["qr_svg"]
        totp = pyotp.TOTP(secret)
        bad = await c.post("/auth/totp/confirm", headers=h, json={"code": "000000"})
        assert bad.status_code == 422 or totp.now() == "000000"
        now = datetime.now(UTC)
        ok = await c.post("/auth/totp/confirm", headers=h, json={"code": totp.at(now)})
        assert ok.status_code == 204, ok.text

        # Password alone is no longer enough.
        need = await _sign_in(c, email)
        assert need.status_code == 401 and need.json()["totp_required"] is True
        code = totp.at(now + timedelta(seconds=30))  # next step: the current one is spent
        signed = await _sign_in(c, email, totp=code)
        assert signed.status_code == 200, signed.text
        replay = await _sign_in(c, email, totp=code)
        assert replay.status_code == 401, "a TOTP code must not work twice"
        odd = await _sign_in(c, email, totp="１２３４５６")  # non-ASCII digits: refused, no 500
        assert odd.status_code == 401
        mfa_h = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        assert (await c.get("/auth/me", headers=mfa_h)).json()["mfa"] is True
        assert (await c.get(f"/campaigns/{cid}", headers=mfa_h)).status_code == 200
        # A refreshed token keeps the second factor.
        ref = await c.post("/auth/refresh", json={"refresh_token": signed.json()["refresh_token"]})
        ref_h = {"Authorization": f"Bearer {ref.json()['access_token']}"}
        assert (await c.get(f"/campaigns/{cid}", headers=ref_h)).status_code == 200
        # The old password-only token still cannot enter.
        assert (await c.get(f"/campaigns/{cid}", headers=h)).status_code == 403


def test_production_refuses_default_secrets():
    bad = Settings(mode="production", secret_key=DEFAULT_SECRET)
    with pytest.raises(SystemExit, match="PORTE_SECRET_KEY"):
        bad.check_production()
    key = base64.b64encode(b"k" * 32).decode()
    short = Settings(
        mode="production",
        secret_key="short",
        data_keys=json.dumps({"a": key}),
        data_key_id="a",
        hmac_key="h" * 32,
    )
    with pytest.raises(SystemExit):
        short.check_production()
    from app.main import create_app

    with pytest.raises(SystemExit):
        create_app(bad)
    good = Settings(
        mode="production",
        public_base_url="https://porte.example.org",
        secret_key="s" * 40,
        data_keys=json.dumps({"a": key}),
        data_key_id="a",
        hmac_key="h" * 32,
        database_url="postgresql://u@localhost/x",
        owner_database_url="postgresql://o@localhost/x",
    )
    good.check_production()  # no exception


async def test_errors_carry_no_stack_trace_and_security_headers(access_app):
    async with client_for(access_app) as c:
        r = await c.get(
            "/campaigns/not-a-uuid",
            headers={"Authorization": "Bearer x", "Origin": "https://evil.example"},
        )
        assert r.status_code == 401
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-request-id"]
        assert "access-control-allow-origin" not in r.headers  # CORS closed by default
