"""Campaigns: create (the creator becomes admin), list the caller's, read one."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import ADMIN
from app.context import CampaignContext
from app.db import set_tenant
from app.errors import InvalidInput
from app.i18n import _
from app.schemas import CampaignCreate, CampaignOut, CampaignPatch
from app.services.access import audit, territory
from app.services.access.audit import flagged_count, write_event

_COLUMNS = (
    "c.id, c.name, c.election_date, c.visit_retention_date, c.supporter_retention_months, "
    "c.k_threshold, c.require_2fa, c.supporter_cells"
)


def one_month_after(day: date) -> date:
    """The same day one month later (clamped to the month's end: 31 Jan -> 28/29 Feb)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


_CAP = text("SELECT porte_visit_retention_cap(CAST(:d AS date))")


async def check_visit_retention(session: AsyncSession, election: date, retention: date) -> None:
    """Refuse (422) a visit retention date before the election or after election + the
    retention policy's longest delay (``retention_policy``; a database trigger holds it too)."""
    if retention < election:
        raise InvalidInput(
            _(
                "Visit data would be deleted before the election: choose a date on or after "
                "{election}."
            ).format(election=election.isoformat()),
            field="visit_retention_date",
        )
    cap = (await session.execute(_CAP, {"d": election})).scalar_one()
    if retention > cap:
        raise InvalidInput(
            _(
                "Visit outcomes may be kept until {cap} at the latest (the election date plus "
                "the longest delay this server allows, PORTE_VISIT_RETENTION_MAX_MONTHS and "
                "_DAYS): choose a date between {election} and {cap}."
            ).format(cap=cap.isoformat(), election=election.isoformat()),
            field="visit_retention_date",
        )


async def get_campaign(ctx: CampaignContext) -> CampaignOut:
    """The context's campaign, with the caller's role (and burst alerts for admins)."""
    row = (
        await ctx.session.execute(
            text(f"SELECT {_COLUMNS} FROM campaign c WHERE c.id = :c"), {"c": ctx.campaign_id}
        )
    ).one()
    flagged = await flagged_count(ctx.session, ctx.campaign_id) if ctx.role == ADMIN else None
    return CampaignOut(**row._mapping, role=ctx.role, flagged_audit_events=flagged)


async def list_campaigns(session: AsyncSession, *, user_id: uuid.UUID) -> list[CampaignOut]:
    """The campaigns the account is a member of, with its role in each."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS}, m.role FROM campaign c JOIN membership m ON m.campaign_id = c.id "
            "WHERE m.user_id = :u ORDER BY c.election_date DESC, c.name"
        ),
        {"u": user_id},
    )
    return [CampaignOut(**r._mapping) for r in rows]


async def create_campaign(
    session: AsyncSession, *, user_id: uuid.UUID, data: CampaignCreate
) -> CampaignOut:
    """Create a campaign whose first admin is its creator."""
    retention = data.visit_retention_date or one_month_after(data.election_date)
    await check_visit_retention(session, data.election_date, retention)
    chosen = None
    if data.territory is not None:
        chosen = await territory.validate(session, data.territory.kind, data.territory.codes)
    cid = uuid.uuid4()
    await set_tenant(session, cid, user_id)  # RLS: new rows must belong to the current campaign
    await session.execute(
        text(
            "INSERT INTO campaign (id, name, election_date, visit_retention_date, "
            "supporter_retention_months, k_threshold, require_2fa, supporter_cells, created_by) "
            "VALUES (:id, :n, :d, :r, :s, :k, :f, :sc, :u)"
        ),
        {
            "id": cid,
            "n": data.name,
            "d": data.election_date,
            "r": retention,
            "s": data.supporter_retention_months,
            "k": data.k_threshold,
            "f": data.require_2fa,
            "sc": data.supporter_cells,
            "u": user_id,
        },
    )
    await session.execute(
        text("INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, 'admin')"),
        {"c": cid, "u": user_id},
    )
    if chosen is not None and chosen.kind != "country":
        districts = await territory.save(session, cid, user_id, chosen)
        await write_event(
            session,
            campaign_id=cid,
            user_id=user_id,
            invite_id=None,
            role="admin",
            action="access.campaign.territory",
            object=str(cid),
            rows=districts,
            details={"from": None, "to": chosen.as_dict()},
        )
    return CampaignOut(
        id=cid,
        name=data.name,
        election_date=data.election_date,
        visit_retention_date=retention,
        supporter_retention_months=data.supporter_retention_months,
        k_threshold=data.k_threshold,
        require_2fa=data.require_2fa,
        supporter_cells=data.supporter_cells,
        role=ADMIN,
        flagged_audit_events=0,
    )


async def update_campaign(ctx: CampaignContext, *, data: CampaignPatch) -> CampaignOut:
    """Change the campaign's settings (admins); every change is written to the audit log."""
    current = (
        (
            await ctx.session.execute(
                text(f"SELECT {_COLUMNS} FROM campaign c WHERE c.id = :c FOR UPDATE"),
                {"c": ctx.campaign_id},
            )
        )
        .one()
        ._mapping
    )
    changes = data.model_dump(exclude_unset=True)
    for key, value in list(changes.items()):
        if value is None:
            raise InvalidInput("Give a value or leave the field out.", field=key)
        if current[key] == value:
            del changes[key]
    merged = {**current, **changes}
    if merged["visit_retention_date"] is not None and (
        {"election_date", "visit_retention_date"} & changes.keys()
    ):
        await check_visit_retention(
            ctx.session, merged["election_date"], merged["visit_retention_date"]
        )
    if changes.get("require_2fa") and not ctx.principal.mfa:
        raise InvalidInput(
            "Sign in with your own second factor first (POST /auth/totp/enrol), or you would "
            "lock yourself out of this campaign.",
            field="require_2fa",
        )
    if changes:
        sets = ", ".join(f"{k} = :{k}" for k in changes)  # keys come from the schema, not input
        await ctx.session.execute(
            text(f"UPDATE campaign SET {sets} WHERE id = :c"), {**changes, "c": ctx.campaign_id}
        )
        await audit.record(
            ctx,
            action="access.campaign.update",
            object=str(ctx.campaign_id),
            details={k: {"from": current[k], "to": v} for k, v in changes.items()},
        )
    return await get_campaign(ctx)
