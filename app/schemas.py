"""Request and response models shared across routers."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict


class CampaignOut(BaseModel):
    """A campaign as its members see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    election_date: date
    visit_retention_date: date | None = None
    supporter_retention_months: int
    k_threshold: int
    require_2fa: bool
    role: str
