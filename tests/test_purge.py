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
    dry = await purge(urls.owner, dry_run=True, today=today)
    assert dry[str(past)]["visits"] == 3 and dry[str(future)]["visits"] == 0
    assert dry[str(past)]["supporters"] == 1 and dry[str(past)]["withdrawal_proofs"] == 1
    async with engine.connect() as conn:
        assert (await _counts(conn, past))["visits"] == 3  # dry run changed nothing

    done = await purge(urls.owner, today=today)
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

    again = await purge(urls.owner, today=today)  # idempotent
    assert all(v == 0 for k, v in again[str(past)].items() if k != "visits_due")
    await engine.dispose()
