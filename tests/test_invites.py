"""Volunteer invite links: create, open on a phone, use, revoke; expiry rules; QR code."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import segno
from sqlalchemy import text

from tests.factories import make_invite, make_world
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_invite_flow_open_use_revoke(access_app, aworld, access_owner, access_settings):
    w = aworld
    other = await make_world(access_owner, access_settings)
    async with client_for(access_app) as c:
        r = await c.post(w.url("/invites"), headers=w.headers["organiser"], json={"label": "Rue A"})
        assert r.status_code == 201, r.text
        inv = r.json()
        token = inv["token"]
        assert token.startswith(f"{w.campaign_id}.")
        assert inv["link"] == f"{access_settings.base_url}/m/#invite={token}"
        assert inv["status"] == "active" and inv["assignment_id"] is None
        expires = datetime.fromisoformat(inv["expires_at"])
        assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)

        # The phone opens the link: no account, no personal data asked.
        s = await c.post("/auth/invite", json={"token": token})
        assert s.status_code == 200, s.text
        session = s.json()
        assert session["campaign_id"] == str(w.campaign_id) and session["token_type"] == "bearer"
        assert session["assignment_id"] is None
        h = _bearer(session["access_token"])
        me = await c.get(w.url(), headers=h)
        assert me.status_code == 200 and me.json()["role"] == "volunteer"
        # Limited to the volunteer's scope.
        assert (await c.get(w.url("/members"), headers=h)).status_code == 403
        assert (await c.get(w.url("/invites"), headers=h)).status_code == 403
        assert (await c.get("/campaigns", headers=h)).status_code == 403
        assert (await c.get(other.url(), headers=h)).status_code == 404

        # The list does not give the link out again.
        listed = (await c.get(w.url("/invites"), headers=w.headers["admin"])).json()
        assert [i["id"] for i in listed] == [inv["id"]]
        assert listed[0]["token"] is None and listed[0]["link"] is None

        # Revoking ends the session at its very next request, and the link stops working.
        rv = await c.delete(w.url(f"/invites/{inv['id']}"), headers=w.headers["organiser"])
        assert rv.status_code == 204
        after = await c.get(w.url(), headers=h)
        assert after.status_code == 401 and "révoqué" in after.json()["detail"]
        assert (await c.post("/auth/invite", json={"token": token})).status_code == 401
        assert (await c.get(w.url("/invites"), headers=w.headers["admin"])).json() == []
        every = await c.get(
            w.url("/invites"), params={"include_inactive": True}, headers=w.headers["admin"]
        )
        assert every.json()[0]["status"] == "revoked"
        # Other campaigns cannot see or revoke it.
        gone = await c.delete(w.url(f"/invites/{inv['id']}"), headers=other.headers["admin"])
        assert gone.status_code == 404

    async with access_owner.connect() as conn:
        actions = (
            (
                await conn.execute(
                    text("SELECT action FROM audit_event WHERE campaign_id = :c ORDER BY id"),
                    {"c": w.campaign_id},
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["access.invite.create", "access.invite.open", "access.invite.revoke"]


async def test_qr_code_encodes_the_link(access_app, aworld):
    w = aworld
    async with client_for(access_app) as c:
        inv = (await c.post(w.url("/invites"), headers=w.headers["admin"], json={})).json()
        en = {**w.headers["organiser"], "Accept-Language": "en"}
        r = await c.get(w.url(f"/invites/{inv['id']}/qr.svg"), headers=en)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("image/svg+xml")
        assert r.headers["cache-control"] == "no-store"
        expected = segno.make(inv["link"], error="m").svg_inline(
            scale=6, border=4, title="Invite link"
        )
        assert r.text == expected
        await c.delete(w.url(f"/invites/{inv['id']}"), headers=w.headers["admin"])
        revoked = await c.get(w.url(f"/invites/{inv['id']}/qr.svg"), headers=w.headers["admin"])
        assert revoked.status_code == 409
        missing = await c.get(w.url(f"/invites/{uuid.uuid4()}/qr.svg"), headers=w.headers["admin"])
        assert missing.status_code == 404


async def test_expiry_rules(access_app, aworld):
    w = aworld
    h = w.headers["organiser"]
    now = datetime.now(UTC)
    async with client_for(access_app) as c:
        for value, reason in [
            ((now + timedelta(days=40)).isoformat(), "at most 30 days"),
            ((now - timedelta(hours=1)).isoformat(), "future"),
            ("2030-01-01T10:00:00", "time zone"),
        ]:
            r = await c.post(
                w.url("/invites"),
                headers={**h, "Accept-Language": "en"},
                json={"expires_at": value},
            )
            assert r.status_code == 422, r.text
            assert r.json()["field"] == "expires_at" and reason in r.json()["detail"]
        ok = await c.post(
            w.url("/invites"), headers=h, json={"expires_at": (now + timedelta(days=2)).isoformat()}
        )
        assert ok.status_code == 201
        bad = await c.post(w.url("/invites"), headers=h, json={"extra": 1})
        assert bad.status_code == 422


async def test_invite_scoped_to_an_assignment(access_app, aworld, access_owner):
    w = aworld
    h = w.headers["organiser"]
    async with access_owner.connect() as conn:
        has_table = (await conn.execute(text("SELECT to_regclass('assignment')"))).scalar()
    async with client_for(access_app) as c:
        unknown = await c.post(
            w.url("/invites"), headers=h, json={"assignment_id": str(uuid.uuid4())}
        )
        assert unknown.status_code == (404 if has_table else 422)
        assert unknown.json()["field"] == "assignment_id"
        if not has_table:
            return
        now = datetime.now(UTC)
        ids = {}
        async with access_owner.begin() as conn:
            turf = (
                await conn.execute(
                    text(
                        "INSERT INTO turf (campaign_id, name, geom) VALUES (:c, 'T', "
                        "ST_GeomFromText('POLYGON((2 48,2.01 48,2.01 48.01,2 48))', 4326)) "
                        "RETURNING id"
                    ),
                    {"c": w.campaign_id},
                )
            ).scalar_one()
            for name, ends in (("soon", timedelta(days=2)), ("long", timedelta(days=45))):
                ids[name] = (
                    await conn.execute(
                        text(
                            "INSERT INTO assignment (campaign_id, turf_id, ends_at) "
                            "VALUES (:c, :t, :e) RETURNING id"
                        ),
                        {"c": w.campaign_id, "t": turf, "e": now + ends},
                    )
                ).scalar_one()
        soon = await c.post(w.url("/invites"), headers=h, json={"assignment_id": str(ids["soon"])})
        assert soon.status_code == 201, soon.text
        exp = datetime.fromisoformat(soon.json()["expires_at"])
        assert abs(exp - (now + timedelta(days=2))) < timedelta(seconds=5)  # ends with it
        long = await c.post(w.url("/invites"), headers=h, json={"assignment_id": str(ids["long"])})
        exp = datetime.fromisoformat(long.json()["expires_at"])
        assert abs(exp - (now + timedelta(days=30))) < timedelta(minutes=1)  # capped
        s = (await c.post("/auth/invite", json={"token": soon.json()["token"]})).json()
        assert s["assignment_id"] == str(ids["soon"])


async def test_bad_or_expired_tokens_are_refused_alike(
    access_app, aworld, access_owner, access_settings
):
    w = aworld
    _, expired_session = await make_invite(
        access_owner, access_settings, w.campaign_id, expires_in=-timedelta(minutes=5)
    )
    async with client_for(access_app) as c:
        answers = []
        for tok in ("garbage", f"{w.campaign_id}.wrong", f"{uuid.uuid4()}.x", f"{w.campaign_id}."):
            r = await c.post("/auth/invite", json={"token": tok})
            answers.append((r.status_code, r.json()["detail"]))
        assert len(set(answers)) == 1 and answers[0][0] == 401
        assert (await c.get(w.url(), headers=expired_session)).status_code == 401


async def test_guessing_invite_links_is_throttled_atomically(
    access_app, aworld, access_owner, access_settings
):
    """20 concurrent made-up links from one address: exactly the limit get 401, the rest 429;
    a real link opened from another address is not counted as a failure."""
    from app.services.access.invites import invite_token

    limit = access_settings.login_failures_per_minute
    w = aworld
    async with client_for(access_app) as c:
        guesses = [f"{w.campaign_id}.{uuid.uuid4().hex}" for _ in range(20)]
        rs = await asyncio.gather(*(c.post("/auth/invite", json={"token": g}) for g in guesses))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(401) == limit and codes.count(429) == 20 - limit, codes

    invite_id, _ = await make_invite(access_owner, access_settings, w.campaign_id)
    token = invite_token(access_settings, w.campaign_id, invite_id)
    async with client_for(access_app) as phone:
        for _ in range(limit + 2):  # opening a real link again and again is never a failure
            assert (await phone.post("/auth/invite", json={"token": token})).status_code == 200


async def test_an_active_invite_link_is_shown_again_and_audited(access_app, aworld, access_owner):
    w = aworld
    async with client_for(access_app) as c:
        inv = (await c.post(w.url("/invites"), headers=w.headers["organiser"], json={})).json()
        again = await c.get(w.url(f"/invites/{inv['id']}/link"), headers=w.headers["organiser"])
        assert again.status_code == 200, again.text
        assert again.json()["link"] == inv["link"] and again.json()["token"] == inv["token"]
        assert "token_hash" not in again.json()
        for role in ("analyst", "volunteer"):
            denied = await c.get(w.url(f"/invites/{inv['id']}/link"), headers=w.headers[role])
            assert denied.status_code == 403
        await c.delete(w.url(f"/invites/{inv['id']}"), headers=w.headers["admin"])
        revoked = await c.get(w.url(f"/invites/{inv['id']}/link"), headers=w.headers["admin"])
        assert revoked.status_code == 409
    async with access_owner.connect() as conn:
        actions = (
            await conn.execute(
                text("SELECT action FROM audit_event WHERE campaign_id = :c ORDER BY id"),
                {"c": w.campaign_id},
            )
        ).scalars()
        assert "access.invite.link" in list(actions)
