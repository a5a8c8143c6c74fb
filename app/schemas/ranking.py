"""Request bodies of the ranking: the campaign's weights and choices."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WeightsIn(BaseModel):
    """Custom weights (factor -> weight), optionally on top of a preset."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = None
    election: str | None = None
    swing_from: str | None = None
    side: str | None = Field(
        default=None,
        max_length=200,
        description="Our side: a nuance code, a party or list name, or a candidate's name "
        "(comma-separated for an alliance); stored as the codes and labels it resolves to.",
    )
    communes: list[str] | None = Field(
        default=None,
        description="No longer a ranking setting: the campaign's territory (PUT "
        "/campaigns/{campaign_id}/territory) limits every list and map.",
    )
