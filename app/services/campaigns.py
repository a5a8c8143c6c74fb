"""Campaign records."""

from __future__ import annotations

from sqlalchemy import text

from app.schemas import CampaignOut
from app.security import CampaignContext


async def get_campaign(ctx: CampaignContext) -> CampaignOut:
    """The context's campaign, with the caller's role."""
    row = (
        await ctx.session.execute(
            text(
                "SELECT id, name, election_date, visit_retention_date, supporter_retention_months, "
                "k_threshold, require_2fa FROM campaign WHERE id = :c"
            ),
            {"c": ctx.campaign_id},
        )
    ).one()
    return CampaignOut(**row._mapping, role=ctx.role)
