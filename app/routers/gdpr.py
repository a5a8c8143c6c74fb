"""GDPR rights of one supporter (admin, audited): export, erase, withdraw, objection."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.schemas.people import WithdrawalIn
from app.security import CampaignScope
from app.services.people import gdpr

router = APIRouter(tags=["gdpr"])


@router.get("/campaigns/{campaign_id}/supporters/{supporter_id}/export")
async def export_supporter(ctx: CampaignScope, supporter_id: uuid.UUID) -> dict:
    """Everything held about this person, as JSON (right of access / portability)."""
    return await gdpr.export(ctx, supporter_id)


@router.delete("/campaigns/{campaign_id}/supporters/{supporter_id}")
async def erase_supporter(ctx: CampaignScope, supporter_id: uuid.UUID) -> dict:
    """Erase this person (right to erasure); aggregates change in the same request."""
    return await gdpr.erase(ctx, supporter_id)


@router.post("/campaigns/{campaign_id}/supporters/{supporter_id}/withdraw")
async def withdraw_consent(
    ctx: CampaignScope, supporter_id: uuid.UUID, body: WithdrawalIn | None = None
) -> dict:
    """Record the withdrawal of consent; identity wiped, the withdrawal kept as proof."""
    body = body or WithdrawalIn()
    channel = (body.channel or "admin")[:50]
    return await gdpr.withdraw(ctx, supporter_id, channel=channel, purposes=body.purposes)


@router.post("/campaigns/{campaign_id}/supporters/{supporter_id}/objection")
async def object_to_visits(ctx: CampaignScope, supporter_id: uuid.UUID) -> dict:
    """Objection to visits: the supporter's door is flagged (no identity on the flag)."""
    return await gdpr.object_to_visits(ctx, supporter_id)
