"""Campaigns and members: creation defaults, listing only one's own, roles, last-admin guard."""

from __future__ import annotations

import uuid

from tests.factories import bearer, make_campaign, make_user
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for, new_email


async def test_create_and_list_only_own_campaigns(access_app, access_owner, access_settings):
    me = await make_user(access_owner, can_create_campaigns=True)
    stranger = await make_user(access_owner)
    theirs = await make_campaign(access_owner, members={stranger: "admin"})
    h = bearer(access_settings, me)
    async with client_for(access_app) as c:
        r = await c.post(
            "/campaigns", headers=h, json={"name": " Bruz 2032 ", "election_date": "2032-01-31"}
        )
        assert r.status_code == 201, r.text
        camp = r.json()
        assert camp["name"] == "Bruz 2032" and camp["role"] == "admin"
        assert camp["k_threshold"] == 11 and camp["supporter_retention_months"] == 36
        assert camp["visit_retention_date"] == "2032-02-29"  # election + 1 month (clamped)
        assert camp["require_2fa"] is False
        mine = (await c.get("/campaigns", headers=h)).json()
        assert [x["id"] for x in mine] == [camp["id"]]
        assert str(theirs) not in (await c.get("/campaigns", headers=h)).text
        # the creator administers it
        members = (await c.get(f"/campaigns/{camp['id']}/members", headers=h)).json()
        assert [(m["user_id"], m["role"]) for m in members] == [(str(me), "admin")]
        assert (await c.get(f"/campaigns/{theirs}", headers=h)).status_code == 404


async def test_create_rejects_bad_values_naming_the_field(
    access_app, access_owner, access_settings
):
    h = bearer(access_settings, await make_user(access_owner, can_create_campaigns=True))
    base = {"name": "X", "election_date": "2032-03-14"}
    async with client_for(access_app) as c:
        for extra, field in [
            ({"k_threshold": 1}, "k_threshold"),
            ({"visit_retention_date": "2032-03-01"}, "visit_retention_date"),
            ({"name": "  "}, "name"),
            ({"election_date": "soon"}, "election_date"),
            ({"supporter_retention_months": 0}, "supporter_retention_months"),
        ]:
            r = await c.post("/campaigns", headers=h, json={**base, **extra})
            assert r.status_code == 422, (extra, r.text)
            assert r.json()["field"] == field, r.json()
            assert r.headers["content-type"].startswith("application/problem+json")
        ok = await c.post("/campaigns", headers=h, json={**base, "k_threshold": 2})
        assert ok.status_code == 201 and ok.json()["k_threshold"] == 2


async def test_members_change_remove_and_keep_an_admin(
    access_app, aworld, access_owner, access_settings
):
    """Joining is by invitation (tests/test_member_invitations.py); roles change and members
    leave here."""
    w = aworld
    h = w.headers["admin"]
    newcomer = await make_user(access_owner)
    async with access_owner.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, 'analyst')"),
            {"c": w.campaign_id, "u": newcomer},
        )
    async with client_for(access_app) as c:
        bad_role = await c.post(
            w.url("/members"), headers=h, json={"email": new_email(), "role": "boss"}
        )
        assert bad_role.status_code == 422 and bad_role.json()["field"] == "role"

        # The newcomer sees the campaign as analyst.
        nh = bearer(access_settings, newcomer)
        assert (await c.get(w.url(), headers=nh)).json()["role"] == "analyst"
        p = await c.patch(w.url(f"/members/{newcomer}"), headers=h, json={"role": "organiser"})
        assert p.status_code == 200 and p.json()["role"] == "organiser"
        assert (await c.get(w.url(), headers=nh)).json()["role"] == "organiser"
        assert (await c.delete(w.url(f"/members/{newcomer}"), headers=h)).status_code == 204
        assert (await c.get(w.url(), headers=nh)).status_code == 404
        assert (await c.delete(w.url(f"/members/{newcomer}"), headers=h)).status_code == 404

        # The last admin cannot be demoted or removed.
        admin_id = w.users["admin"]
        demote = await c.patch(w.url(f"/members/{admin_id}"), headers=h, json={"role": "analyst"})
        assert demote.status_code == 409
        assert (await c.delete(w.url(f"/members/{admin_id}"), headers=h)).status_code == 409
        # With a second admin, the first may step down.
        org = w.users["organiser"]
        assert (
            await c.patch(w.url(f"/members/{org}"), headers=h, json={"role": "admin"})
        ).status_code == 200
        assert (await c.delete(w.url(f"/members/{admin_id}"), headers=h)).status_code == 204
        assert (await c.get(w.url(), headers=h)).status_code == 404


async def test_one_person_different_roles_in_different_campaigns(
    access_app, access_owner, access_settings
):
    uid = await make_user(access_owner)
    a = await make_campaign(access_owner, members={uid: "admin"})
    b = await make_campaign(access_owner, members={uid: "volunteer"})
    h = bearer(access_settings, uid)
    async with client_for(access_app) as c:
        roles = {x["id"]: x["role"] for x in (await c.get("/campaigns", headers=h)).json()}
        assert roles == {str(a): "admin", str(b): "volunteer"}
        assert (await c.get(f"/campaigns/{a}/members", headers=h)).status_code == 200
        assert (await c.get(f"/campaigns/{b}/members", headers=h)).status_code == 403
        assert (await c.get(f"/campaigns/{uuid.uuid4()}", headers=h)).status_code == 404


async def test_admin_cli_create_account(access_urls, access_owner, access_app, monkeypatch):
    import asyncio

    from typer.testing import CliRunner

    from app.cli import cli

    cid = await make_campaign(access_owner, members={})
    monkeypatch.setenv("PORTE_DATABASE_URL", access_urls.app)
    monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", access_urls.owner)
    answers = iter(["short", "long enough password 1", "long enough password 1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    email = new_email()
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--lang", "en", "admin", "create", email, "--campaign", str(cid), "--role", "organiser"],
    )
    assert result.exit_code == 0, result.output
    assert "long enough" not in result.output  # the password is never echoed
    assert "at least 10 characters" in result.output
    async with client_for(access_app) as c:
        r = await c.post(
            "/auth/token", data={"username": email, "password": "long enough password 1"}
        )
        assert r.status_code == 200, r.text
        tok = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.get(f"/campaigns/{cid}", headers=tok)).json()["role"] == "organiser"
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["admin", "create", email])
    assert again.exit_code == 1 and "a déjà un compte" in again.output
    from sqlalchemy import text

    async with access_owner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE app_user SET totp_enabled = true, totp_secret_enc = '\\x01'::bytea, "
                "totp_key_id = 'k' WHERE email = :e"
            ),
            {"e": email},
        )
    reset = await asyncio.to_thread(CliRunner().invoke, cli, ["admin", "reset-2fa", email])
    assert reset.exit_code == 0, reset.output
    async with access_owner.connect() as conn:
        on = (
            await conn.execute(
                text(
                    "SELECT totp_enabled, totp_secret_enc, totp_key_id FROM app_user "
                    "WHERE email = :e"
                ),
                {"e": email},
            )
        ).one()
    assert tuple(on) == (False, None, None)


async def test_demo_campaign_is_idempotent(access_urls, access_owner, access_app, monkeypatch):
    import asyncio

    from app.commands.demo_seed import NEXT_MUNICIPAL_ELECTION, create_demo_campaign

    monkeypatch.setenv("PORTE_MODE", "demo")
    first = await asyncio.to_thread(create_demo_campaign, access_urls.owner, "first password")
    second = await asyncio.to_thread(create_demo_campaign, access_urls.owner, "second password")
    assert (
        first["campaign_id"] == second["campaign_id"] and first["created"] and not second["created"]
    )
    assert first["name"] == "Démo 92-13"
    assert set(first["accounts"]) == {
        f"{r}@demo.local" for r in ("admin", "organiser", "analyst", "volunteer")
    }
    assert NEXT_MUNICIPAL_ELECTION.year == 2032 and NEXT_MUNICIPAL_ELECTION.weekday() == 6
    async with client_for(access_app) as c:
        old = await c.post(
            "/auth/token", data={"username": "analyst@demo.local", "password": "first password"}
        )
        assert old.status_code == 401
        new = await c.post(
            "/auth/token", data={"username": "analyst@demo.local", "password": "second password"}
        )
        assert new.status_code == 200
        h = {"Authorization": f"Bearer {new.json()['access_token']}"}
        camp = (await c.get(f"/campaigns/{first['campaign_id']}", headers=h)).json()
        assert camp["role"] == "analyst" and camp["election_date"] == "2032-03-14"
        # The printed volunteer link works on a phone.
        token = second["invite_path"].split("#invite=")[1]
        assert (await c.post("/auth/invite", json={"token": token})).status_code == 200
    monkeypatch.setenv("PORTE_MODE", "production")
    import pytest

    with pytest.raises(RuntimeError):
        await asyncio.to_thread(create_demo_campaign, access_urls.owner, "x")


async def test_admin_updates_settings_audited(access_app, aworld, access_owner, access_settings):
    w = aworld
    h = w.headers["admin"]
    creator = bearer(access_settings, await make_user(access_owner, can_create_campaigns=True))
    async with client_for(access_app) as c:
        r = await c.patch(w.url(), headers=h, json={"k_threshold": 15, "name": "Renamed"})
        assert r.status_code == 200, r.text
        assert r.json()["k_threshold"] == 15 and r.json()["name"] == "Renamed"
        assert (await c.patch(w.url(), headers=h, json={"k_threshold": 1})).status_code == 422
        bad = await c.patch(w.url(), headers=h, json={"visit_retention_date": "2000-01-01"})
        assert bad.status_code == 422 and bad.json()["field"] == "visit_retention_date"
        null = await c.patch(w.url(), headers=h, json={"name": None})
        assert null.status_code == 422 and null.json()["field"] == "name"
        # Turning on 2FA without one's own second factor would lock the admin out.
        lock = await c.patch(w.url(), headers=h, json={"require_2fa": True})
        assert lock.status_code == 422 and lock.json()["field"] == "require_2fa"
        assert (await c.patch(w.url(), headers=w.headers["organiser"], json={})).status_code == 403
        evil = await c.post(
            "/campaigns", headers=creator, json={"name": "a\x00b", "election_date": "2032-03-14"}
        )
        assert evil.status_code == 422  # NUL cannot be stored: bad input, not a 500
    async with access_owner.connect() as conn:
        from sqlalchemy import text

        details = (
            await conn.execute(
                text(
                    "SELECT details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'access.campaign.update'"
                ),
                {"c": w.campaign_id},
            )
        ).scalar_one()
    assert details["k_threshold"] == {"from": 11, "to": 15}


async def test_visit_retention_is_capped_in_the_api_and_the_database(
    access_app, aworld, access_owner, access_settings
):
    """2099 was accepted. Now at most election + 1 month 7 days (the default
    policy), refused with 422 by the API and by a trigger whoever writes."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    w = aworld  # election 2026-03-15
    h = w.headers["admin"]
    async with client_for(access_app) as c:
        for day in ("2099-01-01", "2026-04-23"):
            r = await c.patch(w.url(), headers=h, json={"visit_retention_date": day})
            assert r.status_code == 422, r.text
            assert r.json()["field"] == "visit_retention_date"
            assert "2026-04-22" in r.json()["detail"]
        ok = await c.patch(w.url(), headers=h, json={"visit_retention_date": "2026-04-22"})
        assert ok.status_code == 200 and ok.json()["visit_retention_date"] == "2026-04-22"
        # Moving the election earlier would leave the date beyond the cap: refused too.
        r = await c.patch(w.url(), headers=h, json={"election_date": "2026-03-01"})
        assert r.status_code == 422 and r.json()["field"] == "visit_retention_date"
        both = {"election_date": "2026-03-01", "visit_retention_date": "2026-04-08"}
        assert (await c.patch(w.url(), headers=h, json=both)).status_code == 200
        created = await c.post(
            "/campaigns",
            headers=h,
            json={
                "name": "Far",
                "election_date": "2032-03-14",
                "visit_retention_date": "2099-01-01",
            },
        )
        assert created.status_code in (403, 422), created.text
        if created.status_code == 422:
            assert created.json()["field"] == "visit_retention_date"
    for sql in (
        "UPDATE campaign SET visit_retention_date = '2099-01-01' WHERE id = :c",
        "INSERT INTO campaign (name, election_date, visit_retention_date) "
        "VALUES ('Far', '2032-03-14', '2099-01-01')",
    ):
        with pytest.raises(IntegrityError, match="campaign_visit_retention_cap|visit_retention"):
            async with access_owner.begin() as conn:
                await conn.execute(text(sql), {"c": w.campaign_id})
