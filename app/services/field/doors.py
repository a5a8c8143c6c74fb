"""The volunteer payload: an assignment's doors in walking order, as compact GeoJSON with ETag."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import text

from app.authz import ADMIN, ORGANISER, VOLUNTEER
from app.context import CampaignContext
from app.errors import Forbidden, NotFound
from app.i18n import _
from app.services.access import audit

_SQL = text(resources.files("app.sql").joinpath("doors_assignment.sql").read_text("utf-8"))
MEDIA_TYPE = "application/geo+json"


@dataclass
class DoorsPayload:
    """The body (or None when the caller's ETag still matches) and its ETag."""

    body: bytes | None
    etag: str
    doors: int


async def _assignment_for(ctx: CampaignContext, assignment_id: uuid.UUID) -> Any:
    """The assignment (its volunteer, turf name, end, whether active) as this caller may see it:
    404 outside the campaign or, for a volunteer, when it is not theirs; 403 when it is theirs
    but not active."""
    row = await ctx.one(
        "SELECT a.id, a.volunteer_user_id, t.name AS turf, a.ends_at, "
        "(a.ended_at IS NULL AND a.starts_at <= now() "
        " AND (a.ends_at IS NULL OR a.ends_at > now())) AS active "
        "FROM assignment a JOIN turf t ON t.campaign_id = a.campaign_id "
        "AND t.id = a.turf_id WHERE a.campaign_id = :c AND a.id = :a",
        a=assignment_id,
        missing=_("No such assignment in this campaign."),
        field="assignment_id",
    )
    if ctx.role == VOLUNTEER:
        mine = (ctx.user_id is not None and row.volunteer_user_id == ctx.user_id) or (
            ctx.assignment_id == assignment_id
        )
        if not mine:
            raise NotFound(_("No such assignment in this campaign."), field="assignment_id")
        if not row.active:
            raise Forbidden(
                _(
                    "This assignment has ended (or not started yet): its doors are no longer "
                    "shown. Ask your organiser for a new one."
                )
            )
    return row


async def assignment_doors(
    ctx: CampaignContext, assignment_id: uuid.UUID, if_none_match: str | None
) -> DoorsPayload:
    """Doors of the assignment with status; volunteers only for their own active assignment."""
    row = await _assignment_for(ctx, assignment_id)
    staff = ctx.role in (ADMIN, ORGANISER)
    rows = (
        await ctx.session.execute(
            _SQL,
            {
                "c": ctx.campaign_id,
                "a": assignment_id,
                "me": ctx.user_id,
                "invite": ctx.principal.invite_id,
                "staff": staff,
            },
        )
    ).all()
    streets: dict[str, int] = {}
    features = []
    for r in rows:
        props: dict[str, object] = {
            "q": r.seq,
            "n": r.num,
            "v": streets.setdefault(r.street or "", len(streets)),
            "h": r.households,
            "s": r.status,
        }
        if r.own_outcome:
            props["o"] = r.own_outcome
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                "properties": props,
            }
        )
    body = orjson.dumps(
        {
            "type": "FeatureCollection",
            "assignment": str(assignment_id),
            "turf": row.turf,
            # the phone wipes its copy when this passes (static/m/app.js)
            "ends_at": row.ends_at.isoformat() if row.ends_at else None,
            "round": rows[0].round_number if rows else None,
            "streets": list(streets),
            "features": features,
        }
    )
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if if_none_match and etag in [t.strip().removeprefix("W/") for t in if_none_match.split(",")]:
        return DoorsPayload(None, etag, len(rows))
    await audit.record(
        ctx,
        action="doors.view",
        object=f"assignment:{assignment_id}",
        rows=len(rows),
    )
    return DoorsPayload(body, etag, len(rows))
