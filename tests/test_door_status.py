"""current_round() and door_status() (migration 0030_door_status) give the answers of the rule
they replaced, spelled out here as every statement used to spell it: across rounds (a visit
counts in its round only), for doors flagged at the door (do_not_knock) or by an objection, and
for a campaign without any round."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from tests.fixtures_field import assigned_turf, now_iso, visit

# The rule as the tiles, the assignment's doors and the turf list wrote it before 0030.
BEFORE = text(
    """
    WITH cur_round AS (
        SELECT id FROM canvass_round WHERE campaign_id = :c ORDER BY number DESC LIMIT 1
    )
    SELECT a.id,
           CASE
               WHEN f.address_id IS NOT NULL THEN 'flagged'
               WHEN EXISTS (
                   SELECT 1 FROM visit v
                   WHERE v.campaign_id = :c AND v.round_id = (SELECT id FROM cur_round)
                     AND v.address_id = a.id
               ) THEN 'visited'
               ELSE 'pending'
           END AS status
    FROM address a
    LEFT JOIN door_flag f ON f.campaign_id = :c AND f.address_id = a.id
    WHERE a.id = ANY(:doors)
    """
)
NOW = text(
    "SELECT a.id, s.status FROM address a CROSS JOIN LATERAL door_status(:c, a.id) s "
    "WHERE a.id = ANY(:doors)"
)
ROUND_BEFORE = text(
    "SELECT id, number FROM canvass_round WHERE campaign_id = :c ORDER BY number DESC LIMIT 1"
)
ROUND_NOW = text("SELECT id, number FROM current_round(:c)")


async def _compare(engine, campaign_id, doors) -> dict[int, str]:
    """Both rules over ``doors``; they must agree door by door. The statuses."""
    params = {"c": campaign_id, "doors": doors}
    async with engine.connect() as conn:
        before = dict((await conn.execute(BEFORE, params)).all())
        now = dict((await conn.execute(NOW, params)).all())
        round_before = (await conn.execute(ROUND_BEFORE, params)).all()
        round_now = (await conn.execute(ROUND_NOW, params)).all()
    assert now == before
    assert round_now == round_before
    return now


async def test_door_status_matches_the_rule_it_replaced_over_rounds_flags_and_objections(
    client, world, owner_engine
):
    _, _, doors = await assigned_turf(client, world, owner_engine)
    a, b, c, d, e = doors[:5]
    vol = world.headers["volunteer"]
    r = await client.post(
        world.url("/visits"),
        json={"visits": [visit(a, "not_home"), visit(b, "do_not_knock"), visit(e, "talked")]},
        headers=vol,
    )
    assert r.json()["created"] == 3
    # An objection from the public form flags a door with no visit (the row the form writes).
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO door_flag (campaign_id, address_id) VALUES (:c, :a)"),
            {"c": world.campaign_id, "a": d},
        )
    s = await _compare(owner_engine, world.campaign_id, doors)
    assert (s[a], s[b], s[c], s[d], s[e]) == ("visited", "flagged", "pending", "flagged", "visited")
    assert sum(v == "pending" for v in s.values()) == len(doors) - 4

    started = await client.post(
        world.url("/rounds"), json={"name": "Second pass"}, headers=world.headers["organiser"]
    )
    assert started.status_code == 201
    s = await _compare(owner_engine, world.campaign_id, doors)
    assert (s[a], s[b], s[c], s[d], s[e]) == ("pending", "flagged", "pending", "flagged", "pending")

    # A visit queued before round 2 counts in round 1; one made now, in round 2.
    late = visit(c, "talked", at=now_iso(timedelta(minutes=-10)))
    await client.post(world.url("/visits"), json={"visits": [late, visit(e, "moved")]}, headers=vol)
    s = await _compare(owner_engine, world.campaign_id, doors)
    assert (s[a], s[b], s[c], s[d], s[e]) == ("pending", "flagged", "pending", "flagged", "visited")

    # The tiles and the turf list read the same function: the turf's counts follow.
    listed = await client.get(world.url("/turfs"), headers=world.headers["organiser"])
    turf = listed.json()["turfs"][0]
    assert (turf["visited"], turf["flagged"]) == (1, 2)


async def test_a_campaign_without_rounds_has_no_current_round_and_only_pending_doors(
    owner_engine, world
):
    async with owner_engine.connect() as conn:
        doors = (await conn.execute(text("SELECT id FROM address ORDER BY id LIMIT 5"))).scalars()
        doors = list(doors)
    assert doors
    s = await _compare(owner_engine, uuid.uuid4(), doors)
    assert set(s.values()) == {"pending"}
