"""Visits: idempotent batches (even 20 concurrent replays), rejections with reasons, flags."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import text

from tests.fixtures_field import (
    BRUZ_CENTRE,
    assigned_turf,
    box,
    count_visits,
    draw,
    now_iso,
    visit,
)


async def _post(client, world, visits, role="volunteer", headers=None):
    return await client.post(
        world.url("/visits"), json={"visits": visits}, headers=headers or world.headers[role]
    )


async def test_twenty_concurrent_replays_of_a_500_visit_batch_store_500(
    client, world, owner_engine
):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    assert len(doors) >= 10
    outcomes = ["not_home", "talked", "refused", "moved", "no_access"]
    batch = [
        visit(
            doors[i % len(doors)],
            outcomes[i % 5],
            at=now_iso(timedelta(milliseconds=i)),
            flat=f"{i % 7}" if i % 3 == 0 else None,
        )
        for i in range(500)
    ]
    for item in batch:
        if item["flat"] is None:
            del item["flat"]
    replies = await asyncio.gather(*[_post(client, world, batch) for _ in range(20)])
    assert [r.status_code for r in replies] == [200] * 20, replies[0].text
    created = sum(r.json()["created"] for r in replies)
    already = sum(r.json()["already_recorded"] for r in replies)
    assert created == 500 and already == 19 * 500
    assert all(r.json()["rejected"] == 0 for r in replies)
    assert await count_visits(owner_engine, world.campaign_id) == 500
    # Once more, sequentially: nothing new.
    again = await _post(client, world, batch)
    assert again.json()["already_recorded"] == 500
    assert await count_visits(owner_engine, world.campaign_id) == 500


async def test_rejections_say_why_and_nothing_is_lost(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    other = await draw(client, world, box(BRUZ_CENTRE[0], BRUZ_CENTRE[1] - 0.006, 0.0008), "Other")
    async with owner_engine.connect() as conn:
        outside_door = (
            await conn.execute(
                text("SELECT address_id FROM turf_door WHERE turf_id = :t LIMIT 1"),
                {"t": other["id"]},
            )
        ).scalar_one()
    good = visit(doors[0])
    reused = {**visit(doors[2]), "id": good["id"]}
    batch = [
        good,
        visit(outside_door),
        visit(doors[1], at=now_iso(timedelta(hours=2))),
        visit(doors[1], at=now_iso(timedelta(days=-3))),
        visit(999_999_999),
        reused,
    ]
    r = await _post(client, world, batch)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x.get("reason", x["result"]) for x in res] == [
        "created",
        "not_in_assignment",
        "in_future",
        "before_round",
        "unknown_door",
        "id_reused",
    ]
    assert all(x["message"] for x in res if x["result"] == "rejected")
    assert r.json()["created"] == 1 and r.json()["rejected"] == 5
    # The same id again, now in another batch: reported as already recorded.
    r = await _post(client, world, [good])
    assert r.json()["results"][0]["result"] == "already_recorded"
    assert await count_visits(owner_engine, world.campaign_id) == 1


async def test_schema_refuses_opinions_notes_and_unknown_outcomes(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    for extra, field in (
        ({"note": "seemed hostile"}, "visits.0.note"),
        ({"opinion": "left"}, "visits.0.opinion"),
    ):
        r = await _post(client, world, [{**visit(doors[0]), **extra}])
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = await _post(client, world, [visit(doors[0], outcome="supporter")])
    assert r.status_code == 422 and r.json()["field"] == "visits.0.outcome"
    naive = {**visit(doors[0]), "visited_at": "2026-03-01T10:00:00"}
    r = await _post(client, world, [naive])
    assert r.status_code == 422 and r.json()["field"] == "visits.0.visited_at"
    both = {**visit(doors[0]), "doors": [doors[1]]}
    r = await _post(client, world, [both])
    assert r.status_code == 422
    assert await count_visits(owner_engine, world.campaign_id) == 0


async def test_replay_after_the_assignment_ended(client, world, owner_engine):
    _, assignment, doors = await assigned_turf(client, world, owner_engine)
    done = [visit(d) for d in doors[:3]]
    assert (await _post(client, world, done)).json()["created"] == 3
    end = await client.post(
        world.url(f"/assignments/{assignment['id']}/end"), headers=world.headers["organiser"]
    )
    assert end.status_code == 200 and end.json()["active"] is False
    late = [visit(d) for d in doors[3:5]]
    r = await _post(client, world, done + late)
    results = r.json()["results"]
    assert [x["result"] for x in results[:3]] == ["already_recorded"] * 3
    assert [x.get("reason") for x in results[3:]] == ["assignment_ended"] * 2
    assert await count_visits(owner_engine, world.campaign_id) == 3


async def test_ten_thousand_visits_in_one_batch_and_the_cap(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    batch = [visit(doors[i % len(doors)], "not_home") for i in range(10_000)]
    r = await _post(client, world, batch)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["created"] == 10_000
    too_many = batch + [visit(doors[0])]
    r = await _post(client, world, too_many)
    assert r.status_code == 413 and "10001" in r.json()["detail"].replace(",", "")
    assert await count_visits(owner_engine, world.campaign_id) == 10_000


async def test_whole_building_or_street_not_home_is_one_action(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    action = {"id": str(uuid.uuid4()), "doors": doors[:8], "visited_at": now_iso()}
    r = await client.post(
        world.url("/visits/bulk-not-home"), json=action, headers=world.headers["volunteer"]
    )
    assert r.status_code == 200 and r.json()["created"] == 8, r.text
    again = await client.post(
        world.url("/visits/bulk-not-home"), json=action, headers=world.headers["volunteer"]
    )
    assert again.json()["already_recorded"] == 8
    # The same as a batch item with a list of doors (same derived ids: nothing new).
    item = {
        "id": action["id"],
        "doors": doors[:8],
        "outcome": "not_home",
        "visited_at": action["visited_at"],
    }
    assert (await _post(client, world, [item])).json()["already_recorded"] == 8
    # Per flat: two flats of one building are two visits.
    flats = [visit(doors[9], "not_home", flat="1A"), visit(doors[9], "talked", flat="2B")]
    assert (await _post(client, world, flats)).json()["created"] == 2
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT flat, outcome FROM visit WHERE campaign_id = :c AND address_id = :a "
                    "ORDER BY flat"
                ),
                {"c": world.campaign_id, "a": doors[9]},
            )
        ).all()
    assert [(x.flat, x.outcome) for x in rows] == [("1A", "not_home"), ("2B", "talked")]


async def test_do_not_knock_creates_the_flag(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    r = await _post(client, world, [visit(doors[0], "do_not_knock")])
    assert r.json()["created"] == 1
    async with owner_engine.connect() as conn:
        flag = (
            await conn.execute(
                text("SELECT kind FROM door_flag WHERE campaign_id = :c AND address_id = :a"),
                {"c": world.campaign_id, "a": doors[0]},
            )
        ).scalar_one()
    assert flag == "do_not_knock"


async def test_analysts_cannot_record_and_staff_can_anywhere(client, world, owner_engine):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    assert (await _post(client, world, [visit(doors[0])], role="analyst")).status_code == 403
    r = await _post(client, world, [visit(doors[0])], role="organiser")
    assert r.json()["created"] == 1


# A flat is named, never described: the API and the database hold the same rule.
FLATS_OK = {"12": "12", "3b": "3B", " a ": "A", "A-12": "A-12", "12bis": "12BIS", "-1": "-1"}
FLATS_REFUSED = ["vote RN", "RN", "contre", "POUR", "LFI", "1234567", "3 B", "é1", "", "12;1"]


async def test_flat_is_a_designation_never_a_note(client, world, owner_engine):
    """`flat` took any 20 characters ("vote RN" was stored): now 422, naming the field."""
    _, _, doors = await assigned_turf(client, world, owner_engine)
    for bad in FLATS_REFUSED:
        r = await _post(client, world, [visit(doors[0], flat=bad)])
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["field"] == "visits.0.flat", r.text
    assert await count_visits(owner_engine, world.campaign_id) == 0
    sent = [visit(doors[i], flat=given) for i, given in enumerate(FLATS_OK)]
    r = await _post(client, world, sent)
    assert r.status_code == 200 and r.json()["created"] == len(FLATS_OK), r.text
    async with owner_engine.connect() as conn:
        stored = dict(
            (
                await conn.execute(
                    text("SELECT address_id, flat FROM visit WHERE campaign_id = :c"),
                    {"c": world.campaign_id},
                )
            ).all()
        )
    assert [stored[doors[i]] for i in range(len(FLATS_OK))] == list(FLATS_OK.values())


async def test_the_database_refuses_what_the_api_refuses(client, world, owner_engine):
    """The CHECK on visit.flat holds even for a writer that skips the API (the owner here)."""
    from sqlalchemy.exc import IntegrityError

    from app.schemas import normalise_flat

    _, _, doors = await assigned_turf(client, world, owner_engine)
    async with owner_engine.connect() as conn:
        round_id = (
            await conn.execute(
                text("SELECT id FROM canvass_round WHERE campaign_id = :c LIMIT 1"),
                {"c": world.campaign_id},
            )
        ).scalar_one()
    samples = [*FLATS_OK.values(), *FLATS_REFUSED, "3b", "AB", "A1B2C3", "-", "É1", "Z"]
    for value in samples:
        try:
            normalise_flat(value)
            api_ok = value == value.strip().upper()  # the API stores the normalised form
        except ValueError:
            api_ok = False
        try:
            async with owner_engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO visit (campaign_id, id, address_id, round_id, outcome, "
                        "flat, visited_at) VALUES (:c, gen_random_uuid(), :a, :r, 'talked', "
                        ":f, now())"
                    ),
                    {"c": world.campaign_id, "a": doors[0], "r": round_id, "f": value},
                )
            db_ok = True
        except IntegrityError:
            db_ok = False
        assert db_ok == api_ok, value


async def test_outcomes_in_french_words_are_recorded_as_codes(client, world, owner_engine):
    """A paper walk sheet typed in later: "absent", "Refusé", "pas d'accès" beside the codes."""
    _, _, doors = await assigned_turf(client, world, owner_engine)
    words = {"absent": "not_home", "Refusé": "refused", "pas d'accès": "no_access"}
    items = [visit(doors[i], word) for i, word in enumerate(words)]
    r = await _post(client, world, items)
    assert r.status_code == 200, r.text
    async with owner_engine.connect() as conn:
        stored = {
            str(row.id): row.outcome
            for row in await conn.execute(
                text("SELECT id, outcome FROM visit WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        }
    assert sorted(stored.values()) == sorted(words.values())
    bad = await _post(client, world, [visit(doors[0], "pour nous")])
    assert bad.status_code == 422 and "outcome" in bad.json()["field"]
