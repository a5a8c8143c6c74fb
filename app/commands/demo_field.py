"""Field set-up of the demo campaign, done through the real HTTP API (in-process).

Cuts one polling station into turfs balanced by households, assigns turfs to
``volunteer@demo.local`` and one to an invite link, then records SYNTHETIC visits over two rounds
as that volunteer (the second round revisits doors nobody answered), so that progress, grey doors
and the coverage factor show. Idempotent: an existing set-up is reused.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine
from app.i18n import _

DEMO_DISTRICT = "92071_0001"  # Sceaux, bureau 1: a few hundred (synthetic) doors
INVITE_LABEL = "Démo : lien bénévole (tournée 2)"
HOUSEHOLDS_PER_TURF = 150
VISITED_TURFS = 3  # turfs of the volunteer account that get synthetic visits
# Outcomes of a first pass, roughly as door-to-door goes in a French town on a Saturday.
FIRST_ROUND = [("not_home", 45), ("talked", 35), ("refused", 10), ("no_access", 7), ("moved", 3)]


class DemoSetupError(RuntimeError):
    """An API call of the demo set-up failed; the message has the answer."""


def _ok(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 400:
        raise DemoSetupError(
            _("{what} failed ({status}): {answer}").format(
                what=what, status=resp.status_code, answer=resp.text[:300]
            )
        )
    return resp.json() if resp.content else None


async def seed_field(settings: Settings, campaign_id: str, password: str) -> dict[str, Any]:
    """Turfs, an assignment for the volunteer account and one for an invite link."""
    from app.main import create_app
    from app.services.access.invites import invite_link, invite_token

    owner = make_engine(settings.owner_database_url or "")
    async with owner.connect() as conn:
        volunteer_id = (
            await conn.execute(text("SELECT id FROM app_user WHERE email = 'volunteer@demo.local'"))
        ).scalar_one()
    app = create_app(settings)
    cid = campaign_id
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            token = _ok(
                await c.post(
                    "/auth/token",
                    data={"username": "organiser@demo.local", "password": password},
                ),
                _("Signing in as organiser@demo.local"),
            )["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            turfs = _ok(await c.get(f"/campaigns/{cid}/turfs"), _("Listing turfs"))["turfs"]
            if not turfs:
                _ok(
                    await c.post(
                        f"/campaigns/{cid}/districts/{DEMO_DISTRICT}/cut",
                        json={"turf_size": HOUSEHOLDS_PER_TURF, "name_prefix": "Sceaux 1"},
                    ),
                    _("Cutting {district} into turfs").format(district=DEMO_DISTRICT),
                )
                turfs = _ok(await c.get(f"/campaigns/{cid}/turfs"), _("Listing turfs"))["turfs"]
            turf_ids = [t["id"] for t in turfs]  # the list holds active turfs only
            active = _ok(
                await c.get(f"/campaigns/{cid}/assignments", params={"active": "true"}),
                _("Listing assignments"),
            )["assignments"]
            ends = (datetime.now(UTC) + timedelta(days=14)).isoformat()
            if not any(str(a["volunteer_user_id"]) == str(volunteer_id) for a in active):
                # The invite link gets turf 2; the account turf 1 and the next ones.
                for turf_id in [turf_ids[0], *turf_ids[2 : 1 + VISITED_TURFS]]:
                    _ok(
                        await c.post(
                            f"/campaigns/{cid}/assignments",
                            json={
                                "turf_id": turf_id,
                                "volunteer_email": "volunteer@demo.local",
                                "ends_at": ends,
                            },
                        ),
                        _("Assigning a turf to volunteer@demo.local"),
                    )
            invites = _ok(await c.get(f"/campaigns/{cid}/invites"), _("Listing invites"))
            mine = [i for i in invites if i["label"] == INVITE_LABEL and i["status"] == "active"]
            if mine:
                token = invite_token(settings, uuid.UUID(cid), uuid.UUID(mine[0]["id"]))
                link = invite_link(settings, token)
            else:
                assignment = _ok(
                    await c.post(
                        f"/campaigns/{cid}/assignments",
                        json={"turf_id": turf_ids[1 % len(turf_ids)], "ends_at": ends},
                    ),
                    _("Creating an assignment for the invite link"),
                )
                invite = _ok(
                    await c.post(
                        f"/campaigns/{cid}/invites",
                        json={"assignment_id": assignment["id"], "label": INVITE_LABEL},
                    ),
                    _("Creating the volunteer invite link"),
                )
                link = invite["link"]
            visits = await _synthetic_visits(c, cid, password)
        return {"turfs": len(turf_ids), "invite_link": link, **visits}
    finally:
        await app.state.db.dispose()
        await owner.dispose()


async def _synthetic_visits(c: httpx.AsyncClient, cid: str, password: str) -> dict[str, Any]:
    """SYNTHETIC visits by volunteer@demo.local over two rounds (once: skipped when a second
    round exists). Round 1 visits most doors of the account's turfs; round 2, started by the
    organiser, revisits half of the doors where nobody answered."""
    rounds = _ok(await c.get(f"/campaigns/{cid}/rounds"), _("Listing rounds"))["rounds"]
    if len(rounds) >= 2:
        return {"visits": 0, "rounds": len(rounds)}
    vol = _ok(
        await c.post(
            "/auth/token", data={"username": "volunteer@demo.local", "password": password}
        ),
        _("Signing in as volunteer@demo.local"),
    )["access_token"]
    as_volunteer = {"Authorization": f"Bearer {vol}"}
    mine = _ok(
        await c.get(
            f"/campaigns/{cid}/assignments", params={"active": "true"}, headers=as_volunteer
        ),
        _("Listing the volunteer's assignments"),
    )["assignments"]
    doors: list[int] = []
    for a in mine:
        payload = _ok(
            await c.get(f"/campaigns/{cid}/assignments/{a['id']}/doors", headers=as_volunteer),
            _("Reading the volunteer's doors"),
        )
        doors += [f["id"] for f in payload["features"]]
    rng = random.Random(2032)  # the same story at every run
    outcomes, weights = zip(*FIRST_ROUND, strict=True)

    async def record(items: list[tuple[int, str]]) -> None:
        now = datetime.now(UTC).isoformat()
        batch = [
            {"id": str(uuid.uuid4()), "door": door, "outcome": outcome, "visited_at": now}
            for door, outcome in items
        ]
        for start in range(0, len(batch), 500):
            _ok(
                await c.post(
                    f"/campaigns/{cid}/visits",
                    json={"visits": batch[start : start + 500]},
                    headers=as_volunteer,
                ),
                _("Recording the demo's synthetic visits"),
            )

    first = [(d, rng.choices(outcomes, weights)[0]) for d in doors if rng.random() < 0.7]
    await record(first)
    _ok(
        await c.post(f"/campaigns/{cid}/rounds", json={"name": None}),
        _("Starting the second round"),
    )
    again = [d for d, o in first if o == "not_home" and rng.random() < 0.5]
    second = [(d, rng.choices(["talked", "not_home", "refused"], [55, 35, 10])[0]) for d in again]
    await record(second)
    return {"visits": len(first) + len(second), "rounds": 2}
