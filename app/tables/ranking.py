"""Ranking per campaign: its settings (weights, election, side, communes) and the cache of
computed rankings.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.tables.meta import metadata

ranking_settings = Table(
    "ranking_settings",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("weights", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("base_preset", Text),
    Column("election_id", Integer),
    Column("side", Text),
    Column("communes", ARRAY(Text())),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_by", Uuid),
    Column("swing_from_id", Integer),
    ForeignKeyConstraint(
        ["campaign_id"],
        ["campaign.id"],
        ondelete="CASCADE",
        name="ranking_settings_campaign_id_fkey",
    ),
    PrimaryKeyConstraint("campaign_id", name="ranking_settings_pkey"),
)


ranking_cache = Table(
    "ranking_cache",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("cache_key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("result", JSONB, nullable=False),
    ForeignKeyConstraint(
        ["campaign_id"], ["campaign.id"], ondelete="CASCADE", name="ranking_cache_campaign_id_fkey"
    ),
    PrimaryKeyConstraint("campaign_id", "cache_key", name="ranking_cache_pkey"),
)
