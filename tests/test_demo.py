"""The demo set-up: accounts per role, turfs cut through the API, a working invite link."""

from __future__ import annotations

from app.commands.demo import _seed
from app.commands.demo_field import DEMO_DISTRICT
from tests.conftest import make_settings

PASSWORD = "demo-test-password"


async def test_demo_seed_gives_a_volunteer_link_with_doors(sample_db, client):
    settings = make_settings(sample_db)
    first = await _seed(settings, sample_db.owner, PASSWORD)
    again = await _seed(settings, sample_db.owner, PASSWORD)
    assert first["campaign_id"] == again["campaign_id"]
    assert first["invite_link"] == again["invite_link"], "re-running the demo reuses its link"
    assert first["turfs"] >= 2
    assert sorted(first["accounts"]) == [
        f"{r}@demo.local" for r in ("admin", "analyst", "organiser", "volunteer")
    ]

    # The printed link opens a session limited to one assignment with doors in that district.
    token = first["invite_link"].split("#invite=", 1)[1]
    session = await client.post("/auth/invite", json={"token": token})
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["assignment_id"] is not None
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    cid = first["campaign_id"]
    doors = await client.get(
        f"/campaigns/{cid}/assignments/{body['assignment_id']}/doors", headers=headers
    )
    assert doors.status_code == 200, doors.text
    features = doors.json()["features"]
    assert features, "the invite's turf has doors"

    # The volunteer account has its own assignment; the organiser sees both.
    signin = await client.post(
        "/auth/token", data={"username": "organiser@demo.local", "password": PASSWORD}
    )
    staff = {"Authorization": f"Bearer {signin.json()['access_token']}"}
    turfs = (await client.get(f"/campaigns/{cid}/turfs", headers=staff)).json()["turfs"]
    assert {t["district_code"] for t in turfs} == {DEMO_DISTRICT}
    active = await client.get(
        f"/campaigns/{cid}/assignments", params={"active": "true"}, headers=staff
    )
    assert len(active.json()["assignments"]) == 2
