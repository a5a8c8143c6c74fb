"""Ranking per campaign: its settings (weights, election, side, communes) and the cache of
computed rankings.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Integer,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.tables.meta import at, metadata, tenant_key

ranking_settings = Table(
    "ranking_settings",
    metadata,
    *tenant_key(),
    Column("weights", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("base_preset", Text),
    Column("election_id", Integer),
    Column("side", Text),
    Column("communes", ARRAY(Text())),
    at("updated_at"),
    Column("updated_by", Uuid),
    Column("swing_from_id", Integer),
)


ranking_cache = Table(
    "ranking_cache",
    metadata,
    *tenant_key(),
    Column("cache_key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    at("computed_at"),
    Column("result", JSONB, nullable=False),
)
