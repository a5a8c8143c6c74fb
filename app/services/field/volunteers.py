"""The campaign's volunteers by name, for organisers choosing who knocks where.

Lists accounts with the volunteer role: display name, e-mail, and their active assignments.
Nothing about supporters, and nothing about staff accounts (admins list members).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.context import CampaignContext
from app.services.field.assignments import ACTIVE_SQL

_VOLUNTEERS = text(
    f"""
    SELECT u.id AS user_id, u.email, u.display_name, m.created_at AS member_since,
           coalesce(json_agg(json_build_object(
               'id', a.id, 'turf_id', a.turf_id, 'turf_name', t.name,
               'district_code', t.district_code, 'starts_at', a.starts_at, 'ends_at', a.ends_at)
             ORDER BY a.starts_at) FILTER (WHERE a.id IS NOT NULL), '[]') AS active_assignments
    FROM membership m
    JOIN app_user u ON u.id = m.user_id
    LEFT JOIN assignment a ON a.campaign_id = m.campaign_id AND a.volunteer_user_id = u.id
                          AND {ACTIVE_SQL}
    LEFT JOIN turf t ON t.campaign_id = a.campaign_id AND t.id = a.turf_id
    WHERE m.campaign_id = :c AND m.role = 'volunteer' AND u.is_active
      AND (CAST(:q AS text) IS NULL OR u.email ILIKE '%' || CAST(:q AS text) || '%'
           OR u.display_name ILIKE '%' || CAST(:q AS text) || '%')
    GROUP BY u.id, u.email, u.display_name, m.created_at
    ORDER BY coalesce(u.display_name, u.email), u.email
    LIMIT :limit OFFSET :offset
    """
)


async def list_volunteers(
    ctx: CampaignContext, *, q: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """Volunteers of the campaign with their active assignments (paginated; ``q`` matches a
    part of the name or e-mail)."""
    rows = await ctx.session.execute(
        _VOLUNTEERS, {"c": ctx.campaign_id, "q": q or None, "limit": limit, "offset": offset}
    )
    items = []
    for r in rows:
        item = dict(r._mapping)
        item["active_assignment_count"] = len(item["active_assignments"])
        items.append(item)
    return {"volunteers": items, "limit": limit, "offset": offset}
