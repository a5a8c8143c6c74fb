"""Who may create campaigns, and members who join by an invitation they accept; organisers
invite volunteers by e-mail, no shell needed. Mail goes through a real
SMTP sink (tests/fixtures_mail.py) and the links are read from it."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from tests.factories import PASSWORD, bearer, make_user
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email
from tests.fixtures_mail import mail_sink

NEW_CAMPAIGN = {"name": "Bruz 2032", "election_date": "2032-03-14"}


def _token(address: str) -> str:
    """The invitation token of the last message sent to ``address``."""
    mail_sink().wait_for(address)
    links = [u for u in mail_sink().links(address) if "/join/#invitation=" in u]
    assert links, mail_sink().to(address)
    return links[-1].split("#invitation=", 1)[1]


def _body(address: str) -> str:
    message = mail_sink().to(address)[-1]
    return message.get_body(preferencelist=("plain",)).get_content()


async def test_creating_a_campaign_needs_the_right(access_app, access_owner, access_settings):
    plain = await make_user(access_owner)
    creator = await make_user(access_owner, can_create_campaigns=True)
    admin = await make_user(access_owner, server_admin=True)
    async with client_for(access_app) as c:
        r = await c.post("/campaigns", headers=bearer(access_settings, plain), json=NEW_CAMPAIGN)
        assert r.status_code == 403, r.text
        me = (await c.get("/auth/me", headers=bearer(access_settings, plain))).json()
        assert me["can_create_campaigns"] is False and me["server_admin"] is False
        ok = await c.post("/campaigns", headers=bearer(access_settings, creator), json=NEW_CAMPAIGN)
        assert ok.status_code == 201 and ok.json()["role"] == "admin"
        # A server admin gives the right (and may take it back); nobody else may.
        h_admin = bearer(access_settings, admin)
        other = await c.patch(
            f"/server/accounts/{plain}",
            headers=bearer(access_settings, creator),
            json={"can_create_campaigns": True},
        )
        assert other.status_code == 403
        given = await c.patch(
            f"/server/accounts/{plain}", headers=h_admin, json={"can_create_campaigns": True}
        )
        assert given.status_code == 200 and given.json()["can_create_campaigns"] is True
        r = await c.post("/campaigns", headers=bearer(access_settings, plain), json=NEW_CAMPAIGN)
        assert r.status_code == 201, r.text
        listed = await c.get("/server/accounts", headers=h_admin, params={"email": "example"})
        assert str(plain) in {a["id"] for a in listed.json()}
        ghost = await c.patch(
            f"/server/accounts/{uuid.uuid4()}", headers=h_admin, json={"can_create_campaigns": True}
        )
        assert ghost.status_code == 404
    # The service's own role can never make a server admin (only the schema owner can).
    from sqlalchemy.ext.asyncio import create_async_engine

    service = create_async_engine(access_settings.database_url)
    try:
        async with service.begin() as conn:
            failed = None
            try:
                await conn.execute(
                    text("UPDATE app_user SET server_admin = true WHERE id = :u"), {"u": plain}
                )
            except Exception as exc:  # noqa: BLE001 - the database refuses
                failed = exc
        assert failed is not None and "server_admin" in str(failed)
    finally:
        await service.dispose()


async def test_adding_a_member_answers_the_same_whether_the_account_exists(
    access_app, aworld, access_owner
):
    w = aworld
    h = {**w.headers["admin"], "Accept-Language": "en"}  # the e-mails are read below
    existing = new_email()
    uid = await make_user(access_owner, existing)
    async with access_owner.begin() as conn:  # an account with 2FA: nothing of it may show
        await conn.execute(
            text("UPDATE app_user SET totp_enabled = true WHERE id = :u"), {"u": uid}
        )
    nobody = new_email()
    async with client_for(access_app) as c:
        a = await c.post(w.url("/members"), headers=h, json={"email": existing, "role": "analyst"})
        b = await c.post(w.url("/members"), headers=h, json={"email": nobody, "role": "analyst"})
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    ja, jb = a.json(), b.json()
    assert set(ja) == set(jb)
    for key in ("id", "email", "created_at", "expires_at"):
        ja.pop(key), jb.pop(key)
    assert ja == jb  # same status, role, inviter...
    assert str(uid) not in a.text and "totp" not in a.text
    # Only the mailbox's owner learns what to do: sign in, or choose a password.
    assert "sign in with your account" in _body(existing)
    assert "choose a password" in _body(nobody)
    # The e-mail is in the language of who invites: French by default, roles by name.
    french = new_email()
    async with client_for(access_app) as c:
        r = await c.post(
            w.url("/members"), headers=w.headers["admin"], json={"email": french, "role": "analyst"}
        )
        assert r.status_code == 202, r.text
    mail_sink().wait_for(french)
    assert str(mail_sink().to(french)[-1]["Subject"]).startswith("Invitation à rejoindre")
    assert "vous invite à rejoindre la campagne" in _body(french)
    assert "avec le rôle analyste" in _body(french)
    # Nothing joined yet.
    async with access_owner.connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM membership WHERE campaign_id = :c AND user_id = :u"),
                {"c": w.campaign_id, "u": uid},
            )
        ).scalar_one()
    assert n == 0


async def test_an_existing_account_accepts_signed_in(access_app, aworld, access_owner):
    w = aworld
    email = new_email()
    uid = await make_user(access_owner, email)
    intruder = new_email()
    await make_user(access_owner, intruder)
    async with client_for(access_app) as c:
        r = await c.post(
            w.url("/members"), headers=w.headers["admin"], json={"email": email, "role": "analyst"}
        )
        assert r.status_code == 202, r.text
        token = _token(email)
        preview = await c.post("/invitations/preview", json={"token": token})
        assert preview.status_code == 200, preview.text
        assert preview.json()["account_exists"] is True
        assert preview.json()["email"] == email and preview.json()["role"] == "analyst"
        # Not without signing in, and not by another account holding the link.
        anon = await c.post("/invitations/accept", json={"token": token})
        assert anon.status_code == 401
        other = await c.post("/auth/token", data={"username": intruder, "password": PASSWORD})
        stolen = await c.post(
            "/invitations/accept",
            json={"token": token},
            headers={"Authorization": f"Bearer {other.json()['access_token']}"},
        )
        assert stolen.status_code == 403
        mine = await c.post("/auth/token", data={"username": email, "password": PASSWORD})
        mh = {"Authorization": f"Bearer {mine.json()['access_token']}"}
        ok = await c.post("/invitations/accept", json={"token": token}, headers=mh)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {
            "campaign_id": str(w.campaign_id),
            "campaign_name": ok.json()["campaign_name"],
            "role": "analyst",
        }
        assert (await c.get(w.url(), headers=mh)).json()["role"] == "analyst"
        # A link works once.
        again = await c.post("/invitations/accept", json={"token": token}, headers=mh)
        assert again.status_code == 401
        listed = await c.get(
            w.url("/member-invitations"),
            headers=w.headers["admin"],
            params={"include_inactive": "true"},
        )
        status = {i["email"]: i["status"] for i in listed.json()}
        assert status[email] == "accepted"
    async with access_owner.connect() as conn:
        joined = (
            await conn.execute(
                text(
                    "SELECT actor_user_id, details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'access.member.join'"
                ),
                {"c": w.campaign_id},
            )
        ).one()
    assert joined.actor_user_id == uid and joined.details["role"] == "analyst"


async def test_an_organiser_invites_a_volunteer_who_has_no_account(
    access_app, aworld, access_owner
):
    """No shell: the organiser sends the invitation, the volunteer creates the account."""
    w = aworld
    org = w.headers["organiser"]
    email = new_email()
    async with client_for(access_app) as c:
        for role in ("admin", "organiser", "analyst"):
            r = await c.post(w.url("/members"), headers=org, json={"email": email, "role": role})
            assert r.status_code == 403 and r.json()["field"] == "role", r.text
        assert (
            await c.post(w.url("/members"), headers=w.headers["analyst"], json={"email": email})
        ).status_code == 403
        r = await c.post(w.url("/members"), headers=org, json={"email": email, "role": "volunteer"})
        assert r.status_code == 202, r.text
        token = _token(email)
        preview = await c.post("/invitations/preview", json={"token": token})
        assert preview.json()["account_exists"] is False
        short = await c.post("/invitations/register", json={"token": token, "password": "short"})
        assert short.status_code == 422 and short.json()["field"] == "password"
        made = await c.post(
            "/invitations/register",
            json={
                "token": token,
                "password": "my volunteer password",
                "display_name": " Marie Curie ",
            },
        )
        assert made.status_code == 201, made.text
        vh = {"Authorization": f"Bearer {made.json()['access_token']}"}
        assert (await c.get(w.url(), headers=vh)).json()["role"] == "volunteer"
        # Volunteers by name: the organiser finds her by the name she chose, or by a part of it.
        found = (await c.get(w.url("/volunteers?q=curie"), headers=org)).json()["volunteers"]
        assert [(v["display_name"], v["email"]) for v in found] == [("Marie Curie", email)]
        # She may change it; a name over one line or too long is refused, naming the field.
        renamed = await c.patch("/auth/me", headers=vh, json={"display_name": "Marie C."})
        assert renamed.status_code == 200 and renamed.json()["display_name"] == "Marie C."
        for bad in ("x" * 81, "two\nlines", ""):
            r = await c.patch("/auth/me", headers=vh, json={"display_name": bad})
            assert r.status_code == 422 and r.json()["field"] == "display_name", (bad, r.text)
        again = await c.post(
            "/invitations/register", json={"token": token, "password": "another password 2"}
        )
        assert again.status_code == 401
        # A real account: it signs in with the password it chose.
        signed = await c.post(
            "/auth/token", data={"username": email, "password": "my volunteer password"}
        )
        assert signed.status_code == 200
        # The organiser lists (and may revoke) the volunteer invitations it can make.
        listed = await c.get(w.url("/member-invitations"), headers=org)
        assert listed.status_code == 200 and email not in {i["email"] for i in listed.json()}


async def test_invitations_are_replaced_revoked_expire_and_are_bounded(
    access_app, aworld, access_owner, access_settings
):
    w = aworld
    h = w.headers["admin"]
    email = new_email()
    async with client_for(access_app) as c:
        await c.post(w.url("/members"), headers=h, json={"email": email, "role": "analyst"})
        first = _token(email)
        await c.post(w.url("/members"), headers=h, json={"email": email, "role": "organiser"})
        mail_sink().wait_for(email, count=2)
        second = _token(email)
        assert first != second
        assert (await c.post("/invitations/preview", json={"token": first})).status_code == 401
        pending = (await c.get(w.url("/member-invitations"), headers=h)).json()
        mine = [i for i in pending if i["email"] == email]
        assert [i["role"] for i in mine] == ["organiser"]
        gone = await c.delete(w.url(f"/member-invitations/{mine[0]['id']}"), headers=h)
        assert gone.status_code == 204
        assert (await c.post("/invitations/preview", json={"token": second})).status_code == 401
        # An organiser cannot revoke (nor see) an admin's invitation of an organiser.
        await c.post(w.url("/members"), headers=h, json={"email": email, "role": "analyst"})
        mail_sink().wait_for(email, count=3)
        third = _token(email)
        inv = [i for i in (await c.get(w.url("/member-invitations"), headers=h)).json()]
        other = await c.delete(
            w.url(f"/member-invitations/{inv[0]['id']}"), headers=w.headers["organiser"]
        )
        assert other.status_code == 404
        async with access_owner.begin() as conn:  # the link expires
            await conn.execute(
                text(
                    "UPDATE member_invitation SET created_at = now() - interval '9 days', "
                    "expires_at = now() - interval '1 second' WHERE campaign_id = :c AND email = :e"
                ),
                {"c": w.campaign_id, "e": email},
            )
        assert (await c.post("/invitations/preview", json={"token": third})).status_code == 401
        garbage = await c.post("/invitations/preview", json={"token": "not-a-token"})
        assert garbage.status_code == 401
        bad = await c.post(
            w.url("/members"), headers=h, json={"email": "no-at-sign", "role": "analyst"}
        )
        assert bad.status_code == 422 and bad.json()["field"] == "email"


async def test_a_campaign_sends_a_bounded_number_of_invitations(access_urls, access_owner):
    from app.main import create_app
    from tests.conftest import make_settings
    from tests.factories import make_world

    settings = make_settings(access_urls, member_invitations_per_hour=2, db_pool_size=2)
    app = create_app(settings)
    w = await make_world(access_owner, settings)
    try:
        async with client_for(app) as c:
            codes = []
            for _ in range(3):
                r = await c.post(
                    w.url("/members"),
                    headers=w.headers["admin"],
                    json={"email": new_email(), "role": "volunteer"},
                )
                codes.append(r.status_code)
            assert codes == [202, 202, 429]
    finally:
        await app.state.db.dispose()


async def test_no_mail_server_stores_no_invitation(access_urls, access_owner):
    from app.main import create_app
    from tests.conftest import make_settings
    from tests.factories import make_world

    settings = make_settings(access_urls, smtp_host="", db_pool_size=2)
    app = create_app(settings)
    w = await make_world(access_owner, settings)
    try:
        async with client_for(app) as c:
            r = await c.post(
                w.url("/members"),
                headers=w.headers["admin"],
                json={"email": new_email(), "role": "volunteer"},
            )
            assert r.status_code == 503 and "Retry-After" in r.headers
        async with access_owner.connect() as conn:
            n = (
                await conn.execute(
                    text("SELECT count(*) FROM member_invitation WHERE campaign_id = :c"),
                    {"c": w.campaign_id},
                )
            ).scalar_one()
        assert n == 0
    finally:
        await app.state.db.dispose()


async def test_concurrent_acceptances_join_once(access_app, aworld, access_owner):
    w = aworld
    email = new_email()
    await make_user(access_owner, email)
    async with client_for(access_app) as c:
        await c.post(
            w.url("/members"), headers=w.headers["admin"], json={"email": email, "role": "analyst"}
        )
        token = _token(email)
        mine = await c.post("/auth/token", data={"username": email, "password": PASSWORD})
        mh = {"Authorization": f"Bearer {mine.json()['access_token']}"}
        rs = await asyncio.gather(
            *(c.post("/invitations/accept", json={"token": token}, headers=mh) for _ in range(4))
        )
    assert sorted(r.status_code for r in rs) == [200, 401, 401, 401]


async def test_purge_forgets_invitations_a_month_after_they_stopped_working(make_db):
    """They hold an e-mail address: `porte purge` deletes them 30 days after acceptance,
    revocation or expiry."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.people.purge import purge

    urls = make_db("invpurge")
    engine = create_async_engine(urls.owner)
    try:
        uid = await make_user(engine)
        from tests.factories import make_campaign

        cid = await make_campaign(engine, members={uid: "admin"})
        async with engine.begin() as conn:
            for email, created, expires, accepted in [  # days ago
                ("old@example.test", 45, 38, None),
                ("used@example.test", 40, 33, 39),
                ("recent@example.test", 10, 3, None),  # expired, kept a while
                ("live@example.test", 1, -6, None),
            ]:
                await conn.execute(
                    text(
                        "INSERT INTO member_invitation (campaign_id, email, role, token_hash, "
                        "invited_by, invited_by_role, created_at, expires_at, accepted_at) "
                        "VALUES (:c, :e, 'volunteer', md5(:e), :u, 'admin', "
                        "now() - make_interval(days => :cr), now() - make_interval(days => :ex), "
                        "now() - make_interval(days => CAST(:ac AS integer)))"
                    ),
                    {"c": cid, "e": email, "u": uid, "cr": created, "ex": expires, "ac": accepted},
                )
        done = await purge(engine)
        assert done[str(cid)]["member_invitations"] == 2
        async with engine.connect() as conn:
            left = {
                r.email
                for r in await conn.execute(
                    text("SELECT email FROM member_invitation WHERE campaign_id = :c"), {"c": cid}
                )
            }
        assert left == {"recent@example.test", "live@example.test"}
    finally:
        await engine.dispose()


async def test_porte_admin_rights_gives_and_takes_the_server_rights(
    access_urls, access_app, access_owner, access_settings, monkeypatch
):
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setenv("PORTE_DATABASE_URL", access_urls.app)
    monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", access_urls.owner)
    email = new_email()
    uid = await make_user(access_owner, email)
    h = bearer(access_settings, uid)

    def run(*args):
        return CliRunner().invoke(cli, ["admin", "rights", *args])

    async with client_for(access_app) as c:
        assert (await c.post("/campaigns", headers=h, json=NEW_CAMPAIGN)).status_code == 403
        r = await asyncio.to_thread(run, email, "--can-create-campaigns")
        assert r.exit_code == 0, r.output
        assert (await c.post("/campaigns", headers=h, json=NEW_CAMPAIGN)).status_code == 201
        r = await asyncio.to_thread(run, email, "--no-can-create-campaigns", "--server-admin")
        assert r.exit_code == 0, r.output
        me = (await c.get("/auth/me", headers=h)).json()
        assert me["server_admin"] is True and me["can_create_campaigns"] is False
        # A server admin may create campaigns and list accounts.
        assert (await c.post("/campaigns", headers=h, json=NEW_CAMPAIGN)).status_code == 201
        assert (await c.get("/server/accounts", headers=h)).status_code == 200
        r = await asyncio.to_thread(run, email, "--no-server-admin")
        assert r.exit_code == 0
        assert (await c.get("/server/accounts", headers=h)).status_code == 403
    unknown = await asyncio.to_thread(run, new_email(), "--server-admin")
    assert unknown.exit_code == 1
