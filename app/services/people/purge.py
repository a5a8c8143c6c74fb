"""Retention (CNIL guidance for political files): `porte purge` deletes what is past its date.

Per campaign, in its own short transaction, as the schema owner (BYPASSRLS):
- visit outcomes after ``campaign.visit_retention_date`` (default: election date + 1 month),
  archived first as anonymous counts per outcome in ``retention_archive``;
- supporters ``supporter_retention_months`` after their last active contact, and withdrawal
  proofs the same delay after the withdrawal;
- handled (or reverted) privacy-form requests and audit events older than
  ``audit_retention_days``, and requests whose e-mailed link expired unconfirmed (they hold the
  hash of a dead link);
- privacy-form requests still not handled (pending, or awaiting the person's confirmation) after
  ``privacy_request_pending_days`` (default 30): deleted with what they hold, counted in the
  run's audit event;
- invitations to join a campaign 30 days after they were accepted, revoked or expired.
Door flags are kept (an address and a date, no identity). Idempotent; ``dry_run`` only counts.
Every run writes one audit event per campaign with the counts. Each run first applies the
server's longest visit retention (``apply_retention_policy``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.services.people.privacy import visit_retention

_STEPS: list[tuple[str, str]] = [
    ("visits", "FROM visit WHERE campaign_id = :c AND :visits_due"),
    (
        "supporters",
        "FROM supporter WHERE campaign_id = :c AND status = 'active' "
        "AND last_contact_at < now() - make_interval(months => :months)",
    ),
    (
        "withdrawal_proofs",
        "FROM supporter WHERE campaign_id = :c AND status = 'withdrawn' "
        "AND withdrawn_at < now() - make_interval(months => :months)",
    ),
    (
        "privacy_requests",
        "FROM privacy_request WHERE campaign_id = :c AND ((status IN ('done', 'reverted') "
        "AND received_at < now() - make_interval(days => :audit_days)) "
        "OR (status = 'unconfirmed' AND expires_at < now()))",
    ),
    (
        "privacy_requests_unhandled",
        # (an unconfirmed request whose link expired is counted above)
        "FROM privacy_request WHERE campaign_id = :c AND (status = 'pending' "
        "OR (status = 'unconfirmed' AND expires_at >= now())) "
        "AND received_at < now() - make_interval(days => :pending_days)",
    ),
    (
        # Invitations to join hold an e-mail address: kept 30 days after they stopped working
        # (accepted, revoked or expired), for the admin's list, then deleted.
        "member_invitations",
        "FROM member_invitation WHERE campaign_id = :c "
        "AND coalesce(accepted_at, revoked_at, expires_at) < now() - interval '30 days'",
    ),
    (
        "audit_events",
        "FROM audit_event WHERE campaign_id = :c "
        "AND at < now() - make_interval(days => :audit_days)",
    ),
]


async def _purge_campaign(
    conn: AsyncConnection,
    camp: Any,
    *,
    today: date,
    audit_days: int,
    pending_days: int,
    dry_run: bool,
) -> dict[str, Any]:
    due = today > visit_retention(camp.election_date, camp.visit_retention_date)
    has_visit = (await conn.execute(text("SELECT to_regclass('visit') IS NOT NULL"))).scalar()
    params = {
        "c": camp.id,
        "visits_due": due,
        "months": camp.supporter_retention_months,
        "audit_days": audit_days,
        "pending_days": pending_days,
    }
    counts: dict[str, Any] = {}
    for name, where in _STEPS:
        if name == "visits" and not has_visit:
            counts[name] = 0
            continue
        counts[name] = (await conn.execute(text(f"SELECT count(*) {where}"), params)).scalar()
    if not dry_run:
        if has_visit and counts["visits"]:
            by_outcome = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT outcome, count(*) FROM visit "
                            "WHERE campaign_id = :c GROUP BY outcome"
                        ),
                        {"c": camp.id},
                    )
                ).all()
            )
            await conn.execute(
                text(
                    "INSERT INTO retention_archive (campaign_id, kind, counts) "
                    "VALUES (:c, 'visits', CAST(:j AS jsonb))"
                ),
                {"c": camp.id, "j": json.dumps(by_outcome)},
            )
        for name, where in _STEPS:
            if counts[name] and (name != "visits" or has_visit):
                await conn.execute(text(f"DELETE {where}"), params)
        await conn.execute(
            text(
                "INSERT INTO audit_event (campaign_id, action, object, row_count, details) "
                "VALUES (:c, 'retention.purge', 'campaign', :n, CAST(:d AS jsonb))"
            ),
            {"c": camp.id, "n": sum(counts.values()), "d": json.dumps(counts)},
        )
    counts["visits_due"] = due
    return counts


async def apply_retention_policy(conn: AsyncConnection, settings: Settings) -> int:
    """Write the server's longest visit retention (settings) into ``retention_policy`` and bring
    campaigns that keep visits longer back to it; return how many campaigns changed.

    Runs as the schema owner (``porte db migrate``, ``porte purge``): the service's role can
    read the policy, never change it. Does nothing on a schema older than migration 0017.
    """
    if not (
        await conn.execute(text("SELECT to_regclass('retention_policy') IS NOT NULL"))
    ).scalar():
        return 0
    await conn.execute(
        text(
            "INSERT INTO retention_policy (id, visit_max) "
            "VALUES (true, make_interval(months => :m, days => :d)) "
            "ON CONFLICT (id) DO UPDATE SET visit_max = EXCLUDED.visit_max, updated_at = now() "
            "WHERE retention_policy.visit_max IS DISTINCT FROM EXCLUDED.visit_max"
        ),
        {"m": settings.visit_retention_max_months, "d": settings.visit_retention_max_days},
    )
    result = await conn.execute(
        text(
            "UPDATE campaign SET visit_retention_date = porte_visit_retention_cap(election_date) "
            "WHERE visit_retention_date > porte_visit_retention_cap(election_date)"
        )
    )
    return result.rowcount


async def purge(
    engine: AsyncEngine,
    *,
    dry_run: bool = False,
    today: date | None = None,
    audit_days: int = 365,
    settings: Settings | None = None,
    progress: Any = None,
) -> dict[str, dict[str, Any]]:
    """Apply the retention rules to every campaign on the owner's ``engine``
    (``app.db.owner_engine``); campaign id -> counts (deleted or due)."""
    today = today or datetime.now(UTC).date()
    settings = settings or Settings()
    out: dict[str, dict[str, Any]] = {}
    if not dry_run:
        async with engine.begin() as conn:
            await apply_retention_policy(conn, settings)
    async with engine.connect() as conn:
        camps = (
            await conn.execute(
                text(
                    "SELECT id, name, election_date, visit_retention_date, "
                    "supporter_retention_months FROM campaign ORDER BY created_at, id"
                )
            )
        ).all()
        await conn.commit()
    for camp in camps:
        async with engine.begin() as conn:
            out[str(camp.id)] = await _purge_campaign(
                conn,
                camp,
                today=today,
                audit_days=audit_days,
                pending_days=settings.privacy_request_pending_days,
                dry_run=dry_run,
            )
        if progress:
            progress(camp, out[str(camp.id)])
    return out


def default_cutoff(election: date) -> date:
    """Election date + 1 month (for docs and tests)."""
    return visit_retention(election, None) or election + timedelta(days=31)
