"""Assignments: frozen door lists, re-assignment history, who sees which, the phone payload."""

from __future__ import annotations

import orjson
from sqlalchemy import text

from tests.fixtures_field import (
    BRUZ_CENTRE,
    assign,
    assigned_turf,
    assignment_doors,
    box,
    draw,
    visit,
)


async def test_assignment_freezes_the_turf_doors_and_reassignment_keeps_history(
    client, world, owner_engine
):
    turf, first, doors = await assigned_turf(client, world, owner_engine)
    async with owner_engine.connect() as conn:
        turf_doors = [
            r.address_id
            for r in await conn.execute(
                text("SELECT address_id FROM turf_door WHERE turf_id = :t ORDER BY seq"),
                {"t": turf["id"]},
            )
        ]
    assert doors == turf_doors and first["door_count"] == len(doors) and first["active"]
    # Re-assign to the organiser's account: the first assignment ends, both stay listed.
    second = await assign(client, world, turf["id"], user="organiser")
    assert second["replaced"] == [first["id"]]
    listed = await client.get(
        world.url(f"/assignments?turf_id={turf['id']}"), headers=world.headers["organiser"]
    )
    rows = {a["id"]: a for a in listed.json()["assignments"]}
    assert set(rows) == {first["id"], second["id"]}
    assert rows[first["id"]]["ended_at"] is not None and not rows[first["id"]]["active"]
    assert rows[second["id"]]["active"]
    # Frozen: the first assignment's door list is unchanged, archived turf or not.
    assert await assignment_doors(owner_engine, first["id"]) == doors
    # A turf with an active assignment cannot be archived.
    busy = await client.post(
        world.url(f"/turfs/{turf['id']}/archive"), headers=world.headers["organiser"]
    )
    assert busy.status_code == 409


async def test_volunteers_see_only_their_own_assignments(client, world, owner_engine):
    _, mine, _ = await assigned_turf(client, world, owner_engine)
    other_turf = await draw(client, world, box(BRUZ_CENTRE[0], BRUZ_CENTRE[1] - 0.006, 0.0008))
    theirs = await assign(client, world, other_turf["id"], user="organiser")
    vol = world.headers["volunteer"]
    listed = await client.get(world.url("/assignments"), headers=vol)
    assert [a["id"] for a in listed.json()["assignments"]] == [mine["id"]]
    assert (
        await client.get(world.url(f"/assignments/{theirs['id']}/doors"), headers=vol)
    ).status_code == 404
    assert (
        await client.get(world.url("/assignments"), headers=world.headers["analyst"])
    ).status_code == 403
    assert (
        await client.get(
            world.url(f"/assignments/{mine['id']}/doors"), headers=world.headers["analyst"]
        )
    ).status_code == 403
    bad = await client.post(
        world.url("/assignments"),
        json={
            "turf_id": other_turf["id"],
            "volunteer_user_id": "00000000-0000-0000-0000-000000000001",
        },
        headers=world.headers["organiser"],
    )
    assert bad.status_code == 422 and bad.json()["field"] == "volunteer_user_id"


async def test_door_payload_is_small_ordered_cached_and_audited(client, world, owner_engine):
    # About 300+ real doors in Bruz's centre.
    turf, assignment, doors = await assigned_turf(client, world, owner_engine, half=0.0028)
    assert len(doors) >= 300, len(doors)
    url = world.url(f"/assignments/{assignment['id']}/doors")
    vol = world.headers["volunteer"]
    r = await client.get(url, headers={**vol, "Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    size_per_300 = len(r.content) / len(doors) * 300
    print(
        f"\n[payload] {len(doors)} doors: {len(r.content)} bytes "
        f"({size_per_300 / 1000:.1f} kB per 300 doors)"
    )
    assert size_per_300 < 100_000
    body = orjson.loads(r.content)
    assert [f["id"] for f in body["features"]] == doors
    assert [f["properties"]["q"] for f in body["features"]] == list(range(1, len(doors) + 1))
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert round(lon, 5) == lon and round(lat, 5) == lat
    assert {f["properties"]["s"] for f in body["features"]} == {"p"}
    etag = r.headers["etag"]
    same = await client.get(url, headers={**vol, "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    # A visit changes the payload: new ETag, door grey, own outcome shown.
    await client.post(
        world.url("/visits"), json={"visits": [visit(doors[0], "refused")]}, headers=vol
    )
    changed = await client.get(url, headers={**vol, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    first = orjson.loads(changed.content)["features"][0]["properties"]
    assert first["s"] == "v" and first["o"] == "refused"
    async with owner_engine.connect() as conn:
        audited = (
            await conn.execute(
                text(
                    "SELECT count(*), sum(row_count) FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'doors.view'"
                ),
                {"c": world.campaign_id},
            )
        ).one()
    assert audited[0] == 2 and audited[1] == 2 * len(doors)  # the 304 is not a disclosure
    # Ended: the volunteer loses the doors (403), the organiser still sees them.
    await client.post(
        world.url(f"/assignments/{assignment['id']}/end"), headers=world.headers["organiser"]
    )
    assert (await client.get(url, headers=vol)).status_code == 403
    assert (await client.get(url, headers=world.headers["organiser"])).status_code == 200


async def test_invite_link_session_works_on_its_assignment_only(client, world, owner_engine):
    turf = await draw(client, world, box(BRUZ_CENTRE[0] - 0.006, BRUZ_CENTRE[1], 0.0009))
    org = world.headers["organiser"]
    r = await client.post(world.url("/assignments"), json={"turf_id": turf["id"]}, headers=org)
    assert r.status_code == 201, r.text
    assignment = r.json()
    inv = await client.post(
        world.url("/invites"), json={"assignment_id": assignment["id"]}, headers=org
    )
    assert inv.status_code == 201, inv.text
    session = await client.post("/auth/invite", json={"token": inv.json()["token"]})
    assert session.status_code == 200, session.text
    assert session.json()["assignment_id"] == assignment["id"]
    phone = {"Authorization": f"Bearer {session.json()['access_token']}"}
    listed = await client.get(world.url("/assignments"), headers=phone)
    assert [a["id"] for a in listed.json()["assignments"]] == [assignment["id"]]
    payload = await client.get(world.url(f"/assignments/{assignment['id']}/doors"), headers=phone)
    assert payload.status_code == 200
    doors = [f["id"] for f in payload.json()["features"]]
    # The volunteer account's own turf is not the invite's.
    _, _, elsewhere = await assigned_turf(client, world, owner_engine, offset=(0.004, 0.0))
    r = await client.post(
        world.url("/visits"), json={"visits": [visit(doors[0]), visit(elsewhere[0])]}, headers=phone
    )
    assert [x.get("reason", x["result"]) for x in r.json()["results"]] == [
        "created",
        "not_in_assignment",
    ]
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT invite_id, volunteer_user_id, assignment_id FROM visit "
                    "WHERE campaign_id = :c"
                ),
                {"c": world.campaign_id},
            )
        ).one()
    assert str(row.invite_id) == inv.json()["id"] and row.volunteer_user_id is None
    assert str(row.assignment_id) == assignment["id"]


async def test_assign_to_an_existing_invite_and_time_window_checks(client, world, owner_engine):
    org = world.headers["organiser"]
    turf = await draw(client, world, box(BRUZ_CENTRE[0] + 0.004, BRUZ_CENTRE[1] - 0.004, 0.0008))
    inv = await client.post(world.url("/invites"), json={"label": "Team B"}, headers=org)
    assert inv.status_code == 201, inv.text
    r = await client.post(
        world.url("/assignments"),
        json={
            "turf_id": turf["id"],
            "invite_id": inv.json()["id"],
            "ends_at": "2099-01-01T00:00:00+00:00",
        },
        headers=org,
    )
    assert r.status_code == 201, r.text
    async with owner_engine.connect() as conn:
        bound = (
            await conn.execute(
                text("SELECT assignment_id FROM invite WHERE id = :i"), {"i": inv.json()["id"]}
            )
        ).scalar_one()
    assert str(bound) == r.json()["id"]
    session = await client.post("/auth/invite", json={"token": inv.json()["token"]})
    assert session.json()["assignment_id"] == r.json()["id"]
    # Bad windows and double use.
    for body, field in (
        ({"ends_at": "2020-01-01T00:00:00+00:00"}, "ends_at"),
        ({"starts_at": "2099-01-02T00:00:00+00:00", "ends_at": "2099-01-01T00:00:00+00:00"}, None),
        ({"ends_at": "2099-01-01T00:00:00"}, "ends_at"),
    ):
        bad = await client.post(
            world.url("/assignments"), json={"turf_id": turf["id"], **body}, headers=org
        )
        assert bad.status_code == 422, bad.text
        if field:
            assert bad.json()["field"] == field
    other = await draw(client, world, box(BRUZ_CENTRE[0] - 0.004, BRUZ_CENTRE[1] + 0.004, 0.0008))
    twice = await client.post(
        world.url("/assignments"),
        json={"turf_id": other["id"], "invite_id": inv.json()["id"]},
        headers=org,
    )
    assert twice.status_code == 409


async def _email(owner_engine, user_id) -> str:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(text("SELECT email FROM app_user WHERE id = :u"), {"u": user_id})
        ).scalar_one()


async def test_organisers_list_volunteers_and_assign_by_email(client, world, owner_engine):
    """Volunteers by name: the organiser lists them and assigns a turf with an e-mail."""
    org = world.headers["organiser"]
    email = await _email(owner_engine, world.users["volunteer"])
    listed = await client.get(world.url("/volunteers"), headers=org)
    assert listed.status_code == 200, listed.text
    (vol,) = listed.json()["volunteers"]  # staff accounts are not listed
    assert vol["email"] == email and vol["active_assignments"] == []
    assert not {"supporters", "address", "doors"} & set(vol)

    turf = await draw(client, world, box(*BRUZ_CENTRE, 0.0008))
    made = await client.post(
        world.url("/assignments"),
        json={"turf_id": turf["id"], "volunteer_email": email.upper()},
        headers=org,
    )
    assert made.status_code == 201, made.text
    assert made.json()["volunteer_user_id"] == str(world.users["volunteer"])
    again = (await client.get(world.url(f"/volunteers?q={email[:8]}"), headers=org)).json()
    (vol,) = again["volunteers"]
    assert [a["turf_name"] for a in vol["active_assignments"]] == [turf["name"]]

    # An e-mail that is not a member's: 422 naming the field, nothing assigned.
    unknown = await client.post(
        world.url("/assignments"),
        json={"turf_id": turf["id"], "volunteer_email": "nobody@example.test"},
        headers=org,
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "volunteer_email"
    both = await client.post(
        world.url("/assignments"),
        json={"turf_id": turf["id"], "volunteer_email": email, "invite_id": made.json()["id"]},
        headers=org,
    )
    assert both.status_code == 422
    for role in ("analyst", "volunteer"):
        denied = await client.get(world.url("/volunteers"), headers=world.headers[role])
        assert denied.status_code == 403
