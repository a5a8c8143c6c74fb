"""Sign-in hardening: TOTP secrets encrypted at rest, atomic throttle."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.main import create_app
from app.services.access.crypto import Cipher, DecryptionFailed, account_aad
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_user
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email

LIMIT = 5  # PORTE_LOGIN_FAILURES_PER_MINUTE in the test settings (the default)


async def _sign_in(c, email, password=PASSWORD, **extra):
    return await c.post("/auth/token", data={"username": email, "password": password, **extra})


async def _totp_row(engine, uid):
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT totp_secret_enc, totp_key_id, totp_enabled FROM app_user WHERE id = :u"
                ),
                {"u": uid},
            )
        ).one()


async def _enrol(c, email) -> tuple[dict, str, datetime]:
    """Sign in, enrol and confirm TOTP; return headers, the secret and the time step used."""
    tok = (await _sign_in(c, email)).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    enrol = await c.post("/auth/totp/enrol", headers=h)
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    now = datetime.now(UTC)
    ok = await c.post("/auth/totp/confirm", headers=h, json={"code": pyotp.TOTP(secret).at(now)})
    assert ok.status_code == 204, ok.text
    return h, secret, now


# ---------------------------------------------------------------- TOTP at rest
async def test_totp_secret_is_stored_encrypted_and_never_shown_again(
    access_app, access_owner, access_settings, caplog
):
    email = new_email()
    uid = await make_user(access_owner, email)
    caplog.set_level(logging.DEBUG)
    async with client_for(access_app) as c:
        h, secret, now = await _enrol(c, email)
        row = await _totp_row(access_owner, uid)
        assert row.totp_enabled
        assert row.totp_key_id == access_settings.data_key_id
        blob = bytes(row.totp_secret_enc)
        raw = base64.b32decode(secret)
        assert secret.encode() not in blob and raw not in blob
        assert secret.lower().encode() not in blob
        # It opens only with this account's associated data.
        cipher = Cipher.from_settings(access_settings)
        ad = account_aad(uid, "totp_secret")
        assert cipher.decrypt(blob, key_id=row.totp_key_id, ad=ad) == secret
        # Later answers never carry it.
        me = await c.get("/auth/me", headers=h)
        signed = await _sign_in(c, email, totp=pyotp.TOTP(secret).at(now + timedelta(seconds=30)))
        assert signed.status_code == 200, signed.text
        for r in (me, signed):
            assert secret not in r.text
        again = await c.post("/auth/totp/enrol", headers=h)
        assert again.status_code == 409 and secret not in again.text
    assert secret not in caplog.text


async def test_copied_ciphertext_does_not_open_for_another_account(
    access_app, access_owner, access_settings
):
    victim, thief = new_email(), new_email()
    vid = await make_user(access_owner, victim)
    tid = await make_user(access_owner, thief)
    async with client_for(access_app) as c:
        _, secret, now = await _enrol(c, victim)
    # Someone with write access to the table copies the victim's row into another account.
    async with access_owner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE app_user t SET totp_secret_enc = v.totp_secret_enc, "
                "totp_key_id = v.totp_key_id, totp_enabled = true "
                "FROM app_user v WHERE v.id = :v AND t.id = :t"
            ),
            {"v": vid, "t": tid},
        )
    row = await _totp_row(access_owner, tid)
    cipher = Cipher.from_settings(access_settings)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(
            row.totp_secret_enc, key_id=row.totp_key_id, ad=account_aad(tid, "totp_secret")
        )
    with pytest.raises(DecryptionFailed):  # nor under another column's name
        cipher.decrypt(row.totp_secret_enc, key_id=row.totp_key_id, ad=account_aad(vid, "x"))
    async with client_for(access_app) as c:
        code = pyotp.TOTP(secret).at(now + timedelta(seconds=30))
        r = await _sign_in(c, thief, totp=code)
        assert r.status_code == 401, r.text  # a clear refusal, not a 500
        assert r.json()["totp_required"] is True


async def test_sign_in_with_totp_after_key_rotation(make_db, monkeypatch):
    """`porte keys rotate` re-encrypts TOTP secrets: an app holding only the new key signs in."""
    from typer.testing import CliRunner

    from app.cli import cli

    urls = make_db("totprot")
    old = make_settings(urls)
    engine = create_async_engine(urls.owner)
    email = new_email()
    uid = await make_user(engine, email)
    app = create_app(old)
    async with client_for(app) as c:
        _, secret, now = await _enrol(c, email)
    await app.state.db.dispose()

    new_key = base64.b64encode(b"n" * 32).decode()
    both = json.dumps({**old.data_key_map, "test2": new_key})
    for name, value in {
        "PORTE_DATABASE_URL": urls.app,
        "PORTE_OWNER_DATABASE_URL": urls.owner,
        "PORTE_DATA_KEYS": both,
        "PORTE_DATA_KEY_ID": "test2",
    }.items():
        monkeypatch.setenv(name, value)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 compte(s)" in result.output and secret not in result.output
    row = await _totp_row(engine, uid)
    assert row.totp_key_id == "test2"

    only_new = make_settings(urls, data_keys=json.dumps({"test2": new_key}), data_key_id="test2")
    app = create_app(only_new)
    try:
        async with client_for(app) as c:
            code = pyotp.TOTP(secret).at(now + timedelta(seconds=30))
            r = await _sign_in(c, email, totp=code)
            assert r.status_code == 200, r.text
    finally:
        await app.state.db.dispose()
        await engine.dispose()


async def test_migration_encrypts_existing_secrets_or_refuses_without_keys(pg_cluster, monkeypatch):
    from app.migrate import downgrade, upgrade
    from tests.conftest import TEMPLATE
    from tests.fixtures_imports import fetch

    name = "totp_migration"
    pg_cluster.create_database(name, template=TEMPLATE)
    url = pg_cluster.url("owner", name)
    try:
        await asyncio.to_thread(downgrade, url, "0009_door_versions")
        secret = pyotp.random_base32()
        uid = (
            await fetch(
                url,
                "INSERT INTO app_user (email, password_hash, totp_secret, totp_enabled) "
                "VALUES ('legacy@example.test', 'x', $1, true) RETURNING id",
                secret,
            )
        )[0][0]
        for var in ("PORTE_DATA_KEYS", "PORTE_DATA_KEY_ID"):
            monkeypatch.delenv(var, raising=False)
        with pytest.raises(Exception, match="PORTE_DATA_KEYS") as refused:
            await asyncio.to_thread(upgrade, url)
        assert type(refused.value).__name__ == "MigrationRefused"
        assert "1 account(s)" in str(refused.value) and "Nothing was changed" in str(refused.value)
        assert (await fetch(url, "SELECT version_num FROM alembic_version"))[0][0] == (
            "0009_door_versions"
        )
        assert (await fetch(url, "SELECT totp_secret FROM app_user"))[0][0] == secret

        settings = Settings(
            data_keys=json.dumps({"mig": base64.b64encode(b"m" * 32).decode()}),
            data_key_id="mig",
        )
        monkeypatch.setenv("PORTE_DATA_KEYS", settings.data_keys)
        monkeypatch.setenv("PORTE_DATA_KEY_ID", settings.data_key_id)
        await asyncio.to_thread(upgrade, url, "0010_totp_at_rest")
        plain, blob, kid = (
            await fetch(url, "SELECT totp_secret, totp_secret_enc, totp_key_id FROM app_user")
        )[0]
        assert plain is None and kid == settings.data_key_id and secret.encode() not in blob
        cipher = Cipher.from_settings(settings)
        assert cipher.decrypt(blob, key_id=kid, ad=account_aad(uid, "totp_secret")) == secret

        await fetch(url, "UPDATE app_user SET totp_last_step = 1, email = email")
        assert (await fetch(url, "SELECT totp_secret_enc FROM app_user"))[0][0] == blob

        await asyncio.to_thread(downgrade, url, "0009_door_versions")
        assert (await fetch(url, "SELECT totp_secret FROM app_user"))[0][0] == secret
        await asyncio.to_thread(upgrade, url, "0010_totp_at_rest")
        # Turning two-factor off by the old path (`porte admin reset-2fa`) drops the secret too.
        await fetch(url, "UPDATE app_user SET totp_enabled = false, totp_secret = NULL")
        assert (await fetch(url, "SELECT totp_secret_enc, totp_key_id FROM app_user"))[0] == (
            None,
            None,
        )
        # Head has no plaintext column at all; turning two-factor off still drops the secret.
        await fetch(
            url,
            "UPDATE app_user SET totp_enabled = true, totp_secret_enc = $1, totp_key_id = 'mig'",
            blob,
        )
        await asyncio.to_thread(upgrade, url)
        columns = [
            r[0]
            for r in await fetch(
                url,
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'app_user'",
            )
        ]
        assert "totp_secret" not in columns and "totp_secret_enc" in columns
        await fetch(url, "UPDATE app_user SET totp_enabled = false")
        assert (await fetch(url, "SELECT totp_secret_enc, totp_key_id FROM app_user"))[0] == (
            None,
            None,
        )
    finally:
        pg_cluster.drop_database(name)


# ---------------------------------------------------------------- atomic throttle
def _answers(responses: list[httpx.Response]) -> Counter:
    return Counter(r.status_code for r in responses)


async def test_concurrent_wrong_passwords_never_exceed_the_limit(access_app, access_owner):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:  # one address guessing one account
        rs = await asyncio.gather(*(_sign_in(c, email, "wrong password") for _ in range(20)))
        assert _answers(rs) == Counter({401: LIMIT, 429: 20 - LIMIT})  # exactly the limit
        for r in rs:
            if r.status_code == 429:
                assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert (await _sign_in(c, email)).status_code == 429  # this address: refused for now
    # The account is now over its limit: each other address gets one guess, not five, and
    # concurrent guesses from one address cannot slip past that.
    clients = [client_for(access_app) for _ in range(5)]
    try:
        rs = await asyncio.gather(
            *(_sign_in(c, email, "wrong password") for c in clients for _ in range(4))
        )
        assert _answers(rs) == Counter({401: 5, 429: 15}), _answers(rs)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    async with client_for(access_app) as owner:  # an address without failures: let in
        assert (await _sign_in(owner, email)).status_code == 200


async def test_concurrent_attempts_from_one_address_never_exceed_the_limit(
    access_app, access_owner
):
    emails = [new_email() for _ in range(20)]
    async with client_for(access_app) as c:
        rs = await asyncio.gather(*(_sign_in(c, e, "wrong password") for e in emails))
    seen = _answers(rs)
    assert seen[401] == LIMIT and seen[429] == 20 - LIMIT, seen


async def test_unknown_accounts_throttle_the_same_way(access_app, access_owner):
    known = new_email()
    await make_user(access_owner, known)
    ghost = new_email()  # no such account
    outcomes = {}
    for email in (known, ghost):
        async with client_for(access_app) as c:
            outcomes[email] = await asyncio.gather(
                *(_sign_in(c, email, "wrong password") for _ in range(12))
            )
    assert (
        _answers(outcomes[known])
        == _answers(outcomes[ghost])
        == Counter({401: LIMIT, 429: 12 - LIMIT})
    )
    strip = ("instance", "request_id")
    for status in (401, 429):
        a = next(r for r in outcomes[known] if r.status_code == status)
        b = next(r for r in outcomes[ghost] if r.status_code == status)
        ja = {k: v for k, v in a.json().items() if k not in strip}
        jb = {k: v for k, v in b.json().items() if k not in strip}
        if status == 429:  # the wait may differ by a second
            ja.pop("detail"), jb.pop("detail")
            assert "Retry-After" in a.headers and "Retry-After" in b.headers
        assert ja == jb


async def test_correct_sign_in_clears_the_count_and_totp_prompt_costs_nothing(
    access_app, access_owner
):
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        for _ in range(LIMIT - 1):
            assert (await _sign_in(c, email, "bad")).status_code == 401
        assert (await _sign_in(c, email)).status_code == 200  # under the limit: let in
        for _ in range(LIMIT - 1):  # ...and the count starts again
            assert (await _sign_in(c, email, "bad")).status_code == 401
        h, secret, now = await _enrol(c, email)  # a 5th attempt, correct: clears again
        # The right password without a code is not a failure: it can be asked many times.
        for _ in range(LIMIT + 2):
            need = await _sign_in(c, email)
            assert need.status_code == 401 and need.json()["totp_required"] is True
        code = pyotp.TOTP(secret).at(now + timedelta(seconds=30))
        assert (await _sign_in(c, email, totp=code)).status_code == 200
