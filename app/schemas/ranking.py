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
    side: str | None = Field(default=None, max_length=200)
    communes: list[str] | None = None
