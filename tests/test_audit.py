"""Audit log: events, burst flagging, admin view with filters and CSV, retention purge."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.context import CampaignContext, Principal
from app.db import set_tenant
from app.services.access import audit
from tests.factories import make_invite
from tests.fixtures_access import *  # noqa: F403
from tests.fixtures_access import client_for


async def _record_many(app, settings, campaign_id, principal, role, actions):
    """Record events through the service's own session, as a request would."""
    flags = []
    async with app.state.db.transaction() as session:
        await set_tenant(session, campaign_id, principal.user_id)
        ctx = CampaignContext(
            campaign_id=campaign_id,
            role=role,
            principal=principal,
            session=session,
            k_threshold=11,
            election_date=None,
            request_id="req-test",
            client="10.9.9.9",
            settings=settings,
        )
        for action in actions:
            await audit.record(ctx, action=action, object="turf:1", rows=42)
            flags.append(
                (
                    await session.execute(
                        text("SELECT flagged FROM audit_event ORDER BY id DESC LIMIT 1")
                    )
                ).scalar_one()
            )
    return flags


async def test_burst_is_flagged_and_shown_to_admins(
    access_app, aworld, access_settings, access_owner
):
    w = aworld
    low = access_settings.model_copy(update={"audit_burst_threshold": 3})
    org = Principal(user_id=w.users["organiser"])
    # Administrative events never count; views and exports do, per actor and per hour.
    flags = await _record_many(
        access_app,
        low,
        w.campaign_id,
        org,
        "organiser",
        ["access.invite.create"] * 4
        + ["doors.view", "doors.view", "doors.export", "doors.view", "doors.view"],
    )
    assert flags == [False] * 4 + [False, False, False, True, True]
    admin = Principal(user_id=w.users["admin"])
    assert await _record_many(access_app, low, w.campaign_id, admin, "admin", ["doors.view"]) == [
        False
    ]
    invite_id, _ = await make_invite(access_owner, access_settings, w.campaign_id)
    inv = Principal(invite_id=invite_id, invite_campaign_id=w.campaign_id)
    assert await _record_many(
        access_app, low, w.campaign_id, inv, "volunteer", ["doors.view"] * 4
    ) == [False, False, False, True]

    async with client_for(access_app) as c:
        camp = (await c.get(w.url(), headers=w.headers["admin"])).json()
        assert camp["flagged_audit_events"] == 3
        assert (await c.get(w.url(), headers=w.headers["organiser"])).json()[
            "flagged_audit_events"
        ] is None
        flagged = await c.get(
            w.url("/audit"), params={"flagged": "true"}, headers=w.headers["admin"]
        )
        assert flagged.status_code == 200
        rows = flagged.json()
        assert len(rows) == 3 and all(r["flagged"] for r in rows)
        assert {r["actor_email"] for r in rows if r["actor_user_id"]} != set()
        assert {r["actor_invite_id"] for r in rows} == {None, str(invite_id)}


async def test_audit_filters_and_csv(access_app, aworld, access_settings):
    w = aworld
    org = Principal(user_id=w.users["organiser"])
    await _record_many(
        access_app,
        access_settings,
        w.campaign_id,
        org,
        "organiser",
        ["doors.view", "supporters.export", "=HYPERLINK(1)"],
    )
    h = w.headers["admin"]
    async with client_for(access_app) as c:
        everything = (await c.get(w.url("/audit"), headers=h)).json()
        assert [e["action"] for e in everything] == [
            "=HYPERLINK(1)",
            "supporters.export",
            "doors.view",
        ]
        assert everything[0]["row_count"] == 42 and everything[0]["request_id"] == "req-test"
        by_action = (
            await c.get(w.url("/audit"), params={"action": "supporters.*"}, headers=h)
        ).json()
        assert [e["action"] for e in by_action] == ["supporters.export"]
        exact = (await c.get(w.url("/audit"), params={"action": "doors.view"}, headers=h)).json()
        assert len(exact) == 1
        emails = await c.get(w.url("/members"), headers=h)
        org_email = next(m["email"] for m in emails.json() if m["role"] == "organiser")
        by_email = (await c.get(w.url("/audit"), params={"actor": org_email}, headers=h)).json()
        by_id = (await c.get(w.url("/audit"), params={"actor": str(org.user_id)}, headers=h)).json()
        assert len(by_email) == len(by_id) == 3
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await c.get(w.url("/audit"), params={"since": future}, headers=h)).json() == []
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        bad = await c.get(w.url("/audit"), params={"since": future, "until": past}, headers=h)
        assert bad.status_code == 422 and bad.json()["field"] == "since"
        # reading the log is itself logged
        again = (
            await c.get(w.url("/audit"), params={"action": "access.audit.*"}, headers=h)
        ).json()
        assert len(again) >= 5

        r = await c.get(w.url("/audit"), params={"format": "csv", "actor": org_email}, headers=h)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert [t["action"] for t in table] == ["'=HYPERLINK(1)", "supporters.export", "doors.view"]
        assert table[0]["actor_email"] == org_email and table[0]["flagged"] == "False"
        # analysts and organisers may not read it
        assert (await c.get(w.url("/audit"), headers=w.headers["organiser"])).status_code == 403


async def test_purge_keeps_twelve_months(access_urls, access_owner, aworld):
    from app.services.access.audit import purge_audit

    w = aworld
    async with access_owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO audit_event (campaign_id, action, at) VALUES "
                "(:c, 'old.view', now() - interval '400 days'), "
                "(:c, 'recent.view', now() - interval '300 days')"
            ),
            {"c": w.campaign_id},
        )
    deleted = await purge_audit(access_owner)  # the default retention: 365 days
    assert deleted >= 1
    async with access_owner.connect() as conn:
        left = (
            (
                await conn.execute(
                    text("SELECT action FROM audit_event WHERE campaign_id = :c"),
                    {"c": w.campaign_id},
                )
            )
            .scalars()
            .all()
        )
    assert left == ["recent.view"]


async def test_audit_csv_cannot_start_a_formula_in_any_spreadsheet(
    access_app, aworld, access_owner, access_settings
):
    """Only a cell's first character was neutralised. An account's e-mail such as
    ``x;=HYPERLINK(..)@…`` became a formula in a spreadsheet splitting on ';' (French locale)."""
    w = aworld
    email = 'x;=hyperlink("http://evil.test")@example.test'
    async with access_owner.begin() as conn:
        await conn.execute(
            text("UPDATE app_user SET email = :e WHERE id = :u"),
            {"e": email, "u": w.users["organiser"]},
        )
    org = Principal(user_id=w.users["organiser"])
    await _record_many(
        access_app, access_settings, w.campaign_id, org, "organiser", ["+doors.view"]
    )
    async with client_for(access_app) as c:
        r = await c.get(
            w.url("/audit"),
            params={"format": "csv", "actor": str(org.user_id)},
            headers=w.headers["admin"],
        )
    assert r.status_code == 200
    for delimiter in (",", ";"):
        cells = [v for row in csv.reader(io.StringIO(r.text), delimiter=delimiter) for v in row]
        risky = [v for v in cells if v.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))]
        assert risky == [], risky
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert row["actor_email"] == 'x;\'=hyperlink("http://evil.test")@example.test'
    assert row["action"] == "'+doors.view"
