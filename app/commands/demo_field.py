"""Field set-up of the demo campaign, done through the real HTTP API (in-process).

Cuts one polling station into turfs, assigns one turf to ``volunteer@demo.local`` and another to an
invite link, so that the volunteer map has doors to show. Idempotent: an existing set-up is reused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine

DEMO_DISTRICT = "92071_0001"  # Sceaux, bureau 1: a few hundred (synthetic) doors
INVITE_LABEL = "Démo : lien bénévole (tournée 2)"
DOORS_PER_TURF = 80


class DemoSetupError(RuntimeError):
    """An API call of the demo set-up failed; the message has the answer."""


def _ok(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 400:
        raise DemoSetupError(f"{what} failed ({resp.status_code}): {resp.text[:300]}")
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
                "Signing in as organiser@demo.local",
            )["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            turfs = _ok(await c.get(f"/campaigns/{cid}/turfs"), "Listing turfs")["turfs"]
            if not turfs:
                _ok(
                    await c.post(
                        f"/campaigns/{cid}/districts/{DEMO_DISTRICT}/cut",
                        json={"doors_per_turf": DOORS_PER_TURF, "name_prefix": "Sceaux 1"},
                    ),
                    f"Cutting {DEMO_DISTRICT} into turfs",
                )
                turfs = _ok(await c.get(f"/campaigns/{cid}/turfs"), "Listing turfs")["turfs"]
            turf_ids = [t["id"] for t in turfs]  # the list holds active turfs only
            active = _ok(
                await c.get(f"/campaigns/{cid}/assignments", params={"active": "true"}),
                "Listing assignments",
            )["assignments"]
            ends = (datetime.now(UTC) + timedelta(days=14)).isoformat()
            if not any(str(a["volunteer_user_id"]) == str(volunteer_id) for a in active):
                _ok(
                    await c.post(
                        f"/campaigns/{cid}/assignments",
                        json={
                            "turf_id": turf_ids[0],
                            "volunteer_user_id": str(volunteer_id),
                            "ends_at": ends,
                        },
                    ),
                    "Assigning a turf to volunteer@demo.local",
                )
            invites = _ok(await c.get(f"/campaigns/{cid}/invites"), "Listing invites")
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
                    "Creating an assignment for the invite link",
                )
                invite = _ok(
                    await c.post(
                        f"/campaigns/{cid}/invites",
                        json={"assignment_id": assignment["id"], "label": INVITE_LABEL},
                    ),
                    "Creating the volunteer invite link",
                )
                link = invite["link"]
        return {"turfs": len(turf_ids), "invite_link": link}
    finally:
        await app.state.db.dispose()
        await owner.dispose()
