"""Retention: `porte purge` deletes what is past its date, keeps door flags and anonymous counts."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.services.people.purge import purge
from tests.factories import make_campaign, make_user

CONSENT_SQL = (
    "INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at, "
    "given_by_subject, channel, wording_version, notice_version, collected_by) "
    "VALUES (:c, :i, 'contact', now() - interval '5 years', true, 'form', 'w', 'n', 'test')"
)


async def _supporter(conn, cid, *, years_ago: int, withdrawn: bool = False) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(text("SET CONSTRAINTS ALL DEFERRED"))  # supporter, then its consent
    await conn.execute(
        text(
            "INSERT INTO supporter (campaign_id, id, last_contact_at) "
            "VALUES (:c, :i, now() - make_interval(years => :y))"
        ),
        {"c": cid, "i": sid, "y": years_ago},
    )
    await conn.execute(text(CONSENT_SQL), {"c": cid, "i": sid})
    if withdrawn:
        await conn.execute(
            text(
                "UPDATE supporter_consent SET withdrawn_at = now() - make_interval(years => :y) "
                "WHERE campaign_id = :c AND supporter_id = :i"
            ),
            {"c": cid, "i": sid, "y": years_ago},
        )
        await conn.execute(
            text(
                "UPDATE supporter SET status = 'withdrawn', "
                "withdrawn_at = now() - make_interval(years => :y) "
                "WHERE campaign_id = :c AND id = :i"
            ),
            {"c": cid, "i": sid, "y": years_ago},
        )
    return sid


async def _visits(conn, cid, address_id: int, n: int) -> None:
    rid = (
        await conn.execute(
            text("INSERT INTO canvass_round (campaign_id, number) VALUES (:c, 1) RETURNING id"),
            {"c": cid},
        )
    ).scalar()
    for i in range(n):
        await conn.execute(
            text(
                "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, visited_at) "
                "VALUES (:c, :i, :a, :r, :o, now() - interval '1 day')"
            ),
            {
                "c": cid,
                "i": uuid.uuid4(),
                "a": address_id,
                "r": rid,
                "o": "talked" if i % 2 else "not_home",
            },
        )


async def _counts(conn, cid) -> dict:
    q = {
        "visits": "SELECT count(*) FROM visit WHERE campaign_id = :c",
        "supporters": "SELECT count(*) FROM supporter WHERE campaign_id = :c",
        "flags": "SELECT count(*) FROM door_flag WHERE campaign_id = :c",
        "old_audit": "SELECT count(*) FROM audit_event WHERE campaign_id = :c "
        "AND action = 'old.view'",
    }
    return {k: (await conn.execute(text(v), {"c": cid})).scalar() for k, v in q.items()}


async def test_purge_removes_what_is_due_and_keeps_door_flags(make_db):
    urls = make_db("purge")
    engine = create_async_engine(urls.owner)
    uid = await make_user(engine)
    past = await make_campaign(engine, members={uid: "admin"}, election_date=date(2025, 3, 16))
    future = await make_campaign(engine, members={uid: "admin"}, election_date=date(2030, 3, 17))
    async with engine.begin() as conn:
        aid = (
            await conn.execute(
                text(
                    "INSERT INTO address (ban_id, numero, nom_voie, code_insee, nom_commune, "
                    "lon, lat, source, source_file) "
                    "VALUES ('t1', 1, 'Rue Test', '35047', 'Bruz', -1.75, 48.02, "
                    "'synthetic', 'test (synthetic)') RETURNING id"
                )
            )
        ).scalar()
        keep = {}
        for cid in (past, future):
            await _visits(conn, cid, aid, 3)
            await conn.execute(
                text("INSERT INTO door_flag (campaign_id, address_id) VALUES (:c, :a)"),
                {"c": cid, "a": aid},
            )
            keep[cid] = await _supporter(conn, cid, years_ago=1)
            await _supporter(conn, cid, years_ago=4)
            await _supporter(conn, cid, years_ago=4, withdrawn=True)
            await conn.execute(
                text(
                    "INSERT INTO audit_event (campaign_id, action, at) "
                    "VALUES (:c, 'old.view', now() - interval '400 days')"
                ),
                {"c": cid},
            )

    today = date(2026, 11, 26)
    dry = await purge(engine, dry_run=True, today=today)
    assert dry[str(past)]["visits"] == 3 and dry[str(future)]["visits"] == 0
    assert dry[str(past)]["supporters"] == 1 and dry[str(past)]["withdrawal_proofs"] == 1
    async with engine.connect() as conn:
        assert (await _counts(conn, past))["visits"] == 3  # dry run changed nothing

    done = await purge(engine, today=today)
    assert done[str(past)] == {**dry[str(past)]}
    async with engine.connect() as conn:
        p, f = await _counts(conn, past), await _counts(conn, future)
        left = (
            (
                await conn.execute(
                    text("SELECT id FROM supporter WHERE campaign_id = :c"), {"c": past}
                )
            )
            .scalars()
            .all()
        )
        archive = (
            await conn.execute(
                text("SELECT counts FROM retention_archive WHERE campaign_id = :c"), {"c": past}
            )
        ).scalar()
        event = (
            await conn.execute(
                text(
                    "SELECT details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'retention.purge'"
                ),
                {"c": past},
            )
        ).scalar()
    assert p == {"visits": 0, "supporters": 1, "flags": 1, "old_audit": 0}
    assert f == {"visits": 3, "supporters": 1, "flags": 1, "old_audit": 0}
    assert left == [keep[past]]
    assert archive == {"talked": 1, "not_home": 2}
    assert event["visits"] == 3 and event["supporters"] == 1

    again = await purge(engine, today=today)  # idempotent
    assert all(v == 0 for k, v in again[str(past)].items() if k != "visits_due")
    await engine.dispose()


async def test_unhandled_privacy_requests_are_deleted_after_a_month(make_db):
    """A pending request (it holds the person's address, encrypted) was kept for
    ever. `porte purge` deletes requests not handled within 30 days; handled ones follow the
    audit retention as before; the run's audit event counts them."""
    urls = make_db("purge_pending")
    engine = create_async_engine(urls.owner)
    uid = await make_user(engine)
    cid = await make_campaign(engine, members={uid: "admin"}, election_date=date(2030, 3, 17))
    async with engine.begin() as conn:
        for days, status in ((45, "pending"), (10, "pending"), (45, "done")):
            await conn.execute(
                text(
                    "INSERT INTO privacy_request (campaign_id, kind, status, outcome, key_id, "
                    "address_enc, received_at) VALUES (:c, 'objection', :s, 'waiting', 'k', "
                    "'\\x00'::bytea, now() - make_interval(days => :d))"
                ),
                {"c": cid, "s": status, "d": days},
            )
    done = await purge(engine)
    assert done[str(cid)]["privacy_requests_unhandled"] == 1
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text(
                    "SELECT status, extract(day FROM now() - received_at)::int FROM "
                    "privacy_request WHERE campaign_id = :c ORDER BY 1, 2"
                ),
                {"c": cid},
            )
        ).all()
        event = (
            await conn.execute(
                text(
                    "SELECT details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'retention.purge'"
                ),
                {"c": cid},
            )
        ).scalar_one()
    assert [tuple(r) for r in left] == [("done", 45), ("pending", 10)]
    assert event["privacy_requests_unhandled"] == 1
    await engine.dispose()


async def test_the_retention_policy_follows_the_settings(make_db, english):
    """PORTE_VISIT_RETENTION_MAX_*: written to the database by the owner (migrate, purge); a
    shorter maximum brings campaigns back within it; the service's role cannot change it."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    from app.config import Settings
    from app.services.people.purge import apply_retention_policy

    urls = make_db("purge_policy")
    engine = create_async_engine(urls.owner)
    uid = await make_user(engine)
    cid = await make_campaign(engine, members={uid: "admin"}, election_date=date(2026, 3, 15))
    longer = Settings(visit_retention_max_months=3, visit_retention_max_days=0)
    async with engine.begin() as conn:
        await apply_retention_policy(conn, longer)
        await conn.execute(
            text("UPDATE campaign SET visit_retention_date = '2026-06-15' WHERE id = :c"),
            {"c": cid},
        )
    await purge(engine, settings=Settings())  # back to the default: 1 month 7 days
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                text("SELECT visit_retention_date::text FROM campaign WHERE id = :c"), {"c": cid}
            )
        ).scalar_one()
    assert kept == "2026-04-22"
    with pytest.raises(ValueError, match="6 months"):
        Settings(visit_retention_max_months=6, visit_retention_max_days=1)
    app_engine = create_async_engine(urls.app)
    with pytest.raises(DBAPIError, match="permission denied"):
        async with app_engine.begin() as conn:
            await conn.execute(text("UPDATE retention_policy SET visit_max = '10 years'"))
    await app_engine.dispose()
    await engine.dispose()


async def test_purge_every_runs_on_a_schedule_until_stopped(make_db):
    """`porte purge --every` (the compose file's daily job) purges again after each interval
    and stops cleanly on SIGTERM."""
    import asyncio
    import os
    import signal
    import sys

    urls = make_db("purge_every")
    engine = create_async_engine(urls.owner)
    uid = await make_user(engine)
    cid = await make_campaign(engine, members={uid: "admin"})
    env = {**os.environ, "DATABASE_URL": urls.app, "OWNER_DATABASE_URL": urls.owner}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "--lang",
        "en",
        "purge",
        "--every",
        "1s",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    runs = 0
    try:
        for _ in range(300):
            async with engine.connect() as conn:
                runs = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM audit_event WHERE campaign_id = :c "
                            "AND action = 'retention.purge'"
                        ),
                        {"c": cid},
                    )
                ).scalar_one()
            if runs >= 3 or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await engine.dispose()
    assert runs >= 3, (out.decode(), err.decode())
    assert proc.returncode == 0, err.decode()
    assert out.decode().count("campaigns checked") >= 3
