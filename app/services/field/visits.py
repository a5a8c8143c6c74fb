"""Visits: batches from phones (often replayed offline queues), recorded once each, set-based.

There is no free-text note and no opinion field, on purpose: an opinion guessed at the door is
sensitive data (GDPR art. 9) the campaign has no basis to hold. Unknown fields are refused (422).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from importlib import resources
from typing import Any

from sqlalchemy import text

from app.authz import ADMIN, ORGANISER
from app.context import CampaignContext
from app.errors import PorteError
from app.i18n import N_, _
from app.schemas.field import MAX_BATCH, BulkNotHome, VisitIn

CLOCK_SKEW = timedelta(minutes=5)

REASONS = {
    "not_in_assignment": N_("This door is not in your active assignment."),
    "assignment_ended": N_(
        "Your assignment for this door has ended, so this visit was not recorded; "
        "tell your organiser what you saw."
    ),
    "in_future": N_(
        "The visit time is more than 5 minutes in the future: check the phone's date and time."
    ),
    "before_round": N_("The visit time is before the first canvassing round started."),
    "unknown_door": N_("There is no such door."),
    "id_reused": N_(
        "This visit id was already used for another door or by someone else; "
        "make a new UUID for every visit."
    ),
}

_SQL = text(resources.files("app.sql").joinpath("visits_record.sql").read_text("utf-8"))


class BatchTooLarge(PorteError):
    """A batch above the cap (413)."""

    status = 413
    title = N_("Batch too large")


def expand(batch: list[VisitIn]) -> list[tuple[uuid.UUID, int, VisitIn]]:
    """One (visit id, door, item) per door; a multi-door item's ids are uuid5(item id, door)."""
    rows: list[tuple[uuid.UUID, int, VisitIn]] = []
    for item in batch:
        if item.door is not None:
            rows.append((item.id, item.door, item))
        else:
            for door in dict.fromkeys(item.doors or []):
                rows.append((uuid.uuid5(item.id, str(door)), door, item))
    return rows


async def record_visits(ctx: CampaignContext, batch: list[VisitIn]) -> dict[str, Any]:
    """Record a batch; per visit: created, already_recorded, or rejected with a reason."""
    rows = expand(batch)
    if len(rows) > MAX_BATCH:
        raise BatchTooLarge(
            _(
                "This batch holds {n} visits; at most {max} are accepted per "
                "request. Send the queue in smaller batches (nothing from this one was "
                "recorded)."
            ).format(n=len(rows), max=MAX_BATCH),
            field="visits",
        )
    # Duplicate ids inside one batch: the first counts, the others are answered like a replay.
    first: dict[uuid.UUID, int] = {}
    unique: list[tuple[uuid.UUID, int, VisitIn]] = []
    for vid, door, item in rows:
        if vid not in first:
            first[vid] = door
            unique.append((vid, door, item))
    unique.sort(key=lambda r: r[0])  # one insertion order for every batch (no deadlocks)
    staff = ctx.role in (ADMIN, ORGANISER)
    params = {
        "c": ctx.campaign_id,
        "ids": [r[0] for r in unique],
        "doors": [r[1] for r in unique],
        "outcomes": [r[2].outcome for r in unique],
        "flats": [r[2].flat for r in unique],
        "ats": [r[2].visited_at for r in unique],
        "asgs": [r[2].assignment_id for r in unique],
        "staff": staff,
        "me": ctx.user_id,
        "my_assignment": ctx.assignment_id,
        "invite": ctx.principal.invite_id,
        "skew": CLOCK_SKEW,
    }
    result_rows = await _run(ctx, params)
    by_id = {r.id: r.result for r in result_rows}
    results = []
    counts = {"created": 0, "already_recorded": 0, "rejected": 0}
    seen: set[uuid.UUID] = set()
    for vid, door, _extra in rows:
        res = by_id[vid]
        if vid in seen:  # a duplicate inside this batch
            res = (
                "already_recorded"
                if first[vid] == door and res in ("created", "already_recorded")
                else "id_reused"
            )
        seen.add(vid)
        out: dict[str, Any] = {"id": vid, "door": door}
        if res in ("created", "already_recorded"):
            out["result"] = res
            counts[res] += 1
        else:
            out.update(result="rejected", reason=res, message=_(REASONS[res]))
            counts["rejected"] += 1
        results.append(out)
    return {**counts, "results": results}


async def _run(ctx: CampaignContext, params: dict[str, Any]) -> list[Any]:
    """Run the batch statement (no savepoint: one round trip matters on the hot path).

    Deadlocks between concurrent batches cannot happen: every batch inserts its visits in id
    order and its door flags afterwards in door order, so locks are always taken in one order.
    """
    return (await ctx.session.execute(_SQL, params)).all()


async def bulk_not_home(ctx: CampaignContext, body: BulkNotHome) -> dict[str, Any]:
    """Record 'nobody home' at many doors (a building, a street segment) as one action."""
    item = VisitIn(
        id=body.id,
        doors=body.doors,
        outcome="not_home",
        visited_at=body.visited_at,
        assignment_id=body.assignment_id,
    )
    return await record_visits(ctx, [item])
