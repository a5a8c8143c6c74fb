"""The admin's review of door objections sent on the public form, and their bulk revert.

An objection takes effect at once (``privacy_form``); someone with a list of addresses could
therefore flag street after street. The admin sees every form objection that was placed on a door
— when, from which coarse network, which door, whether its flag is still there and still the
form's — with the networks that sent the most, and reverts a flood in one call (by ids, or by
network and time window). Reverting removes only flags the form created: a door a volunteer or an
admin flagged too keeps its flag. Both the list and the revert are audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.context import CampaignContext
from app.errors import InvalidInput
from app.i18n import _
from app.schemas.people import DoorObjectionRevert
from app.services.access import audit

STATUSES = ("active", "reverted", "all")

_WHERE = """
    r.campaign_id = :c AND r.kind = 'objection' AND r.address_id IS NOT NULL
    AND (CAST(:origin AS text) IS NULL OR r.origin = :origin)
    AND (CAST(:since AS timestamptz) IS NULL OR r.received_at >= :since)
    AND (CAST(:until AS timestamptz) IS NULL OR r.received_at <= :until)
"""
_LIST = text(
    f"""
    SELECT r.id, r.received_at, r.origin, r.status, r.outcome, r.address_id, r.resolved_at,
           a.numero, a.suffixe, a.nom_voie AS street, a.code_postal, a.nom_commune AS commune,
           a.lon, a.lat, f.address_id IS NOT NULL AS flagged,
           coalesce(f.request_id = r.id, false) AS revertible
    FROM privacy_request r
    LEFT JOIN address a ON a.id = r.address_id
    LEFT JOIN door_flag f ON f.campaign_id = r.campaign_id AND f.address_id = r.address_id
    WHERE {_WHERE}
      AND (CAST(:status AS text) = 'all' OR (CAST(:status AS text) = 'reverted') =
           (r.status = 'reverted'))
    ORDER BY r.received_at DESC, r.id
    LIMIT :lim OFFSET :off
    """
)
_BY_ORIGIN = text(
    f"""
    SELECT coalesce(r.origin, 'unknown') AS origin, count(*)::int AS objections
    FROM privacy_request r
    WHERE {_WHERE} AND r.status <> 'reverted'
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20
    """
)


def _params(
    campaign_id: uuid.UUID, origin: str | None, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    if since and until and since > until:
        raise InvalidInput(_("'since' is after 'until'"), field="since")
    return {"c": campaign_id, "origin": origin or None, "since": since, "until": until}


async def list_objections(
    ctx: CampaignContext,
    *,
    origin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str = "active",
    limit: int = 200,
    offset: int = 0,
) -> dict[str, Any]:
    """Form objections placed on a door, newest first, with the networks that sent the most."""
    if status not in STATUSES:
        raise InvalidInput(
            _("must be one of: {values}").format(values=", ".join(STATUSES)), field="status"
        )
    params = _params(ctx.campaign_id, origin, since, until)
    rows = await ctx.session.execute(
        _LIST, {**params, "status": status, "lim": limit, "off": offset}
    )
    items = [dict(r._mapping, id=str(r.id)) for r in rows]
    by_origin = [dict(r._mapping) for r in await ctx.session.execute(_BY_ORIGIN, params)]
    await audit.record(
        ctx,
        action="door_objection.list",
        object="door_objections",
        rows=len(items),
        details={"origin": origin, "status": status},
    )
    return {"items": items, "by_origin": by_origin, "limit": limit, "offset": offset}


_REVERT = text(
    f"""
    WITH chosen AS (
        SELECT r.id FROM privacy_request r
        WHERE {_WHERE} AND r.status = 'done'
          AND (CAST(:ids AS uuid[]) IS NULL OR r.id = ANY(CAST(:ids AS uuid[])))
        FOR UPDATE
    ),
    unflagged AS (
        DELETE FROM door_flag f USING chosen
        WHERE f.campaign_id = :c AND f.request_id = chosen.id
        RETURNING f.address_id
    ),
    marked AS (
        UPDATE privacy_request r SET status = 'reverted', resolved_at = now(), resolved_by = :u
        FROM chosen WHERE r.campaign_id = :c AND r.id = chosen.id
        RETURNING r.id
    )
    SELECT (SELECT count(*) FROM marked)::int AS reverted,
           (SELECT count(*) FROM unflagged)::int AS doors_unflagged
    """
)


async def revert(ctx: CampaignContext, body: DoorObjectionRevert) -> dict[str, int]:
    """Undo form objections chosen by ``ids`` and/or by ``origin``, ``since``, ``until``."""
    ids, origin, since, until = body.ids, body.origin, body.since, body.until
    if ids is None and not (origin or since or until):
        raise InvalidInput(
            _(
                "say which objections to revert: their ids, or a network (origin) and/or a time "
                "window (since, until)"
            ),
            field="ids",
        )
    params = _params(ctx.campaign_id, origin, since, until)
    row = (await ctx.session.execute(_REVERT, {**params, "ids": ids, "u": ctx.user_id})).one()
    out = {"reverted": row.reverted, "doors_unflagged": row.doors_unflagged}
    await audit.record(
        ctx,
        action="door_objection.revert",
        object="door_objections",
        rows=row.reverted,
        details={
            "ids": len(ids) if ids is not None else None,
            "origin": origin,
            "since": since,
            "until": until,
            "doors_unflagged": row.doors_unflagged,
        },
    )
    return out
