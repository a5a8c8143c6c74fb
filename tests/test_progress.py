"""Door status across rounds (grey, red again, flagged never red) and live progress."""

from __future__ import annotations

from datetime import timedelta

import orjson

from tests.fixtures_field import assigned_turf, now_iso, visit


async def _status(client, world, assignment_id, role="volunteer"):
    r = await client.get(
        world.url(f"/assignments/{assignment_id}/doors"), headers=world.headers[role]
    )
    assert r.status_code == 200, r.text
    return {f["id"]: f["properties"]["s"] for f in orjson.loads(r.content)["features"]}


async def test_grey_in_the_current_round_red_again_in_a_new_one_flagged_never_red(
    client, world, owner_engine
):
    _, assignment, doors = await assigned_turf(client, world, owner_engine)
    vol = world.headers["volunteer"]
    a, b, c = doors[:3]
    r = await client.post(
        world.url("/visits"),
        json={"visits": [visit(a, "not_home"), visit(b, "do_not_knock")]},
        headers=vol,
    )
    assert r.json()["created"] == 2
    status = await _status(client, world, assignment["id"])
    assert (status[a], status[b], status[c]) == ("v", "f", "p")

    new_round = await client.post(
        world.url("/rounds"), json={"name": "Second pass"}, headers=world.headers["organiser"]
    )
    assert new_round.status_code == 201 and new_round.json()["number"] == 2
    status = await _status(client, world, assignment["id"])
    assert (status[a], status[b], status[c]) == ("p", "f", "p")  # flagged is never red

    # A visit made before round 2 (queued offline) still counts for round 1, not round 2.
    late_sync = visit(c, "talked", at=now_iso(timedelta(minutes=-10)))
    await client.post(world.url("/visits"), json={"visits": [late_sync]}, headers=vol)
    assert (await _status(client, world, assignment["id"]))[c] == "p"
    await client.post(world.url("/visits"), json={"visits": [visit(c, "talked")]}, headers=vol)
    assert (await _status(client, world, assignment["id"]))[c] == "v"
    rounds = await client.get(world.url("/rounds"), headers=vol)
    assert [x["number"] for x in rounds.json()["rounds"]] == [1, 2]
    assert rounds.json()["rounds"][-1]["current"] is True


async def test_progress_moves_with_visits_per_turf_district_and_campaign(
    client, world, owner_engine
):
    turf, _, doors = await assigned_turf(client, world, owner_engine)
    org = world.headers["organiser"]
    before = (await client.get(world.url("/progress"), headers=org)).json()
    assert before["campaign"]["doors"] == len(doors) and before["campaign"]["visited"] == 0
    visits = [visit(d, "not_home") for d in doors[:12]] + [visit(doors[12], "talked")]
    visits.append(visit(doors[0], "talked"))  # a second visit at the same door, later
    await client.post(
        world.url("/visits"), json={"visits": visits}, headers=world.headers["volunteer"]
    )
    after = (await client.get(world.url("/progress"), headers=org)).json()
    camp = after["campaign"]
    assert camp["visited"] == 13 and camp["pending"] == len(doors) - 13 and camp["visits"] == 14
    # Doors by their latest outcome in the round.
    assert camp["outcomes"]["not_home"] == 11 and camp["outcomes"]["talked"] == 2
    assert camp["rounds"]["1"]["visited"] == 13
    [t] = after["turfs"]
    assert t["turf_id"] == turf["id"] and t["visited"] == 13
    detail = (await client.get(world.url(f"/turfs/{turf['id']}"), headers=org)).json()
    assert detail["progress"]["visited"] == 13 and detail["progress"]["current_round"] == 1
    assert detail["assignments"][0]["active"] is True
    listed = (await client.get(world.url("/turfs"), headers=org)).json()["turfs"]
    assert listed[0]["visited"] == 13

    # Analysts: no turf level; talked (2) is below k = 11, and not_home is hidden with it, else
    # talked = visited - not_home = 13 - 11 (the example; shown by the previous code).
    analyst = world.headers["analyst"]
    assert (await client.get(world.url("/progress?level=turf"), headers=analyst)).status_code == 403
    seen = (await client.get(world.url("/progress"), headers=analyst)).json()
    assert "turfs" not in seen
    camp = seen["campaign"]
    assert camp["visited"] == 13 and camp["doors"] == len(doors)
    assert camp["outcomes"]["talked"] is None and camp["outcomes"]["not_home"] is None
    assert camp["outcomes"]["refused"] == 0  # zeros describe nobody
    assert camp["rounds"]["1"]["outcomes"] == camp["outcomes"]
    # no count that would tie the outcomes to the doors or the rounds to each other
    assert not {"pending", "visits", "flagged"} & set(camp)
    [area] = seen["districts"]  # Bruz's doors lie outside every polling station of the sample
    assert area["district_code"] is None and area["visited"] == 13
    assert area["outcomes"]["talked"] is None and area["outcomes"]["not_home"] is None
    assert (
        await client.get(world.url("/progress"), headers=world.headers["volunteer"])
    ).status_code == 403


async def test_district_progress_after_a_cut(client, world, owner_engine):
    from tests.fixtures_field import smallest_district

    code, n = await smallest_district(owner_engine)
    org = world.headers["organiser"]
    cut = await client.post(
        world.url(f"/districts/{code}/cut"), json={"doors_per_turf": 30}, headers=org
    )
    assert cut.status_code == 201
    turf_id = cut.json()["turfs"][0]["id"]
    assignment = await client.post(
        world.url("/assignments"),
        json={"turf_id": turf_id, "volunteer_user_id": str(world.users["volunteer"])},
        headers=org,
    )
    payload = await client.get(
        world.url(f"/assignments/{assignment.json()['id']}/doors"), headers=org
    )
    doors = [f["id"] for f in payload.json()["features"]]
    await client.post(
        world.url("/visits"),
        json={"visits": [visit(d) for d in doors[:5]]},
        headers=world.headers["volunteer"],
    )
    data = (
        await client.get(world.url(f"/progress?level=district&district={code}"), headers=org)
    ).json()
    [d] = data["districts"]
    assert d["district_code"] == code and d["doors"] == d["doors_in_district"] == n
    assert d["visited"] == 5 and d["turfs"] == len(cut.json()["turfs"])
    assert "campaign" not in data and "turfs" not in data
