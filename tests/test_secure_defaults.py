"""Secure defaults whatever the mode: no public secret outside test mode, keys
generated and kept in development and demo, refused at start in production, and a service
database role that could read across campaigns refused in production."""

from __future__ import annotations

import base64
import json
import logging
import stat
import uuid
from datetime import UTC, datetime

import jwt
import pytest

from app.config import DEFAULT_SECRET, Settings
from app.main import ServiceRoleRefused, create_app
from tests.factories import PASSWORD, make_campaign, make_user
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email
from tests.fixtures_mail import mail_sink
from tests.fixtures_supporters import person

KEY = base64.b64encode(b"p" * 32).decode()
GOOD = dict(
    public_base_url="https://porte.example.org",
    secret_key="s" * 40,
    data_keys=json.dumps({"p1": KEY}),
    data_key_id="p1",
    hmac_key="h" * 40,
)


def _dev_settings(urls, db_dir, **over) -> Settings:
    """Settings of a development (or demo) server given no secret at all."""
    values = dict(
        mode="development",
        database_url=urls.app,
        owner_database_url=urls.owner,
        db_dir=db_dir,
        secrets_file=None,
        db_pool_size=2,
        smtp_host="127.0.0.1",
        smtp_port=mail_sink().port,
    )
    values.update(over)
    return Settings(**values)


def _forged(user_id: uuid.UUID, key: str) -> dict[str, str]:
    now = int(datetime.now(UTC).timestamp())
    body = {"sub": str(user_id), "typ": "access", "ver": 0, "mfa": False, "iat": now}
    token = jwt.encode({**body, "exp": now + 300}, key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_development_generates_keeps_and_uses_its_own_secrets(
    access_urls, access_owner, tmp_path, caplog, english
):
    db_dir = tmp_path / "db"
    caplog.set_level(logging.WARNING, logger="porte")
    app = create_app(_dev_settings(access_urls, db_dir))
    live = app.state.settings
    path = db_dir / "porte-secrets.json"
    try:
        email = new_email()
        uid = await make_user(access_owner, email)
        cid = await make_campaign(access_owner, members={uid: "admin"})
        async with client_for(app) as c:
            # A token forged with the public default secret is refused.
            forged = await c.get("/auth/me", headers=_forged(uid, DEFAULT_SECRET))
            assert forged.status_code == 401, forged.text
            signed = await c.post("/auth/token", data={"username": email, "password": PASSWORD})
            assert signed.status_code == 200, signed.text
            h = {"Authorization": f"Bearer {signed.json()['access_token']}"}
            # The data keys exist: two-factor enrolment and supporters work (they answered 500
            # "Encryption keys not configured" on a server given no keys).
            enrol = await c.post("/auth/totp/enrol", headers=h)
            assert enrol.status_code == 200, enrol.text
            created = await c.post(f"/campaigns/{cid}/supporters", headers=h, json=person(1))
            assert created.status_code == 201, created.text
            read = await c.get(f"/campaigns/{cid}/supporters/{created.json()['id']}", headers=h)
            assert read.status_code == 200 and read.json()["name"] == "Test Person 1"

        # Generated on first start, next to the private cluster, readable by the owner only.
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert live.secret_key == stored["secret_key"] != DEFAULT_SECRET
        assert len(live.secret_key.encode()) >= 32 and len(live.hmac_key.encode()) >= 32
        assert live.data_key_id in live.data_key_map
        # ...and the start says so, and where.
        assert str(path) in caplog.text and "generated" in caplog.text
    finally:
        await app.state.db.dispose()

    # A second start (another worker, a restart) uses the same secrets: data stays readable.
    again = create_app(_dev_settings(access_urls, db_dir, mode="demo"))
    try:
        assert again.state.settings.secret_key == live.secret_key
        assert again.state.settings.data_keys == live.data_keys
        assert again.state.settings.hmac_key == live.hmac_key
        assert again.state.settings.local_secrets.created is False
    finally:
        await again.state.db.dispose()

    # Values given in the environment win over the file.
    given = _dev_settings(access_urls, db_dir, **GOOD)
    app3 = create_app(given)
    try:
        assert app3.state.settings.secret_key == GOOD["secret_key"]
        assert app3.state.settings.local_secrets is None  # nothing was taken from the file
    finally:
        await app3.state.db.dispose()


@pytest.mark.parametrize("mode", ["development", "demo", "production"])
@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"secret_key": DEFAULT_SECRET}, "PORTE_SECRET_KEY"),
        ({"secret_key": "x" * 31}, "PORTE_SECRET_KEY"),
        ({"hmac_key": "short"}, "PORTE_HMAC_KEY"),
        ({"data_keys": json.dumps({"p1": "not base64!"})}, "PORTE_DATA_KEYS"),
        ({"data_keys": json.dumps({"p1": base64.b64encode(b"k" * 16).decode()})}, "32"),
        ({"data_key_id": "elsewhere"}, "PORTE_DATA_KEY_ID"),
    ],
)
def test_weak_or_malformed_secrets_stop_the_start(mode, override, named, tmp_path):
    """Refused at start (never a 500 at request time), in every mode but test."""
    settings = Settings(
        mode=mode,
        db_dir=tmp_path,
        secrets_file=None,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        owner_database_url="postgresql://nobody@127.0.0.1:1/none",
        **{**GOOD, **override},
    )
    if override.get("secret_key") == DEFAULT_SECRET and mode != "production":
        # The built-in default means "not given": development and demo use their own instead.
        assert create_app(settings).state.settings.secret_key != DEFAULT_SECRET
    else:
        with pytest.raises(SystemExit, match=named):
            create_app(settings)
    # Test mode keeps accepting what tests give it.
    create_app(settings.model_copy(update={"mode": "test"}))


def test_production_never_generates_secrets(tmp_path, english):
    for missing in ("secret_key", "data_keys", "hmac_key"):
        values = {**GOOD, missing: DEFAULT_SECRET if missing == "secret_key" else ""}
        settings = Settings(
            mode="production",
            db_dir=tmp_path,
            secrets_file=None,
            database_url="postgresql://nobody@127.0.0.1:1/none",
            owner_database_url="postgresql://nobody@127.0.0.1:1/none",
            **values,
        )
        with pytest.raises(SystemExit, match="Refusing to start in production"):
            create_app(settings)
    assert not any(tmp_path.iterdir()), "production wrote no secrets file"


# ---------------------------------------------------------------- the service's database role
def _url(pg_cluster, role: str, password: str, database: str) -> str:
    return f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{pg_cluster.port}/{database}"


async def _start(settings: Settings) -> None:
    """Run the app's start-up (lifespan) and stop it again."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


async def test_production_refuses_a_role_that_could_read_across_campaigns(
    pg_cluster, make_db, caplog, english
):
    urls = make_db("roles")
    name = urls.name
    suffix = uuid.uuid4().hex[:6]
    su, byp, own = f"t_su_{suffix}", f"t_byp_{suffix}", f"t_own_{suffix}"
    pg_cluster.psql(
        f"CREATE ROLE {su} LOGIN SUPERUSER PASSWORD 'pw'; "
        f"CREATE ROLE {byp} LOGIN BYPASSRLS PASSWORD 'pw'; "
        f"CREATE ROLE {own} LOGIN PASSWORD 'pw'; "
        f'GRANT CONNECT ON DATABASE "{name}" TO {byp}, {own};'
    )
    pg_cluster.psql(
        f"GRANT porte_app TO {own}; GRANT USAGE ON SCHEMA public TO {own}; "
        f"ALTER TABLE visit OWNER TO {own}",
        database=name,
    )
    base = dict(mode="production", owner_database_url=urls.owner, db_pool_size=2, **GOOD)
    caplog.set_level(logging.ERROR, logger="porte")
    try:
        for url, why in [
            (urls.owner, "BYPASSRLS"),  # the schema owner: BYPASSRLS and owner of every table
            (urls.owner, "owns"),
            (_url(pg_cluster, su, "pw", name), "superuser"),
            (_url(pg_cluster, byp, "pw", name), "BYPASSRLS"),
            (_url(pg_cluster, own, "pw", name), "visit"),
        ]:
            caplog.clear()
            with pytest.raises(ServiceRoleRefused, match=why):
                await _start(Settings(database_url=url, **base))
            assert why in caplog.text, "the log says why"
        # The service's own role starts.
        await _start(Settings(database_url=urls.app, **base))
    finally:
        pg_cluster.psql("ALTER TABLE visit OWNER TO porte_owner", database=name)
        pg_cluster.drop_database(name)
        pg_cluster.psql(f"DROP ROLE {su}; DROP ROLE {byp}; DROP ROLE {own}")
