"""Ranking per campaign: its settings (weights, election, side) and the precomputed ranking per
territory (migration 0020): snapshots of per-factor values and z-scores, scorings (one weighted
sum, ranked), commune summaries and the scoring the map draws.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.tables.meta import at, metadata, tenant_key, tenant_ref

ranking_settings = Table(
    "ranking_settings",
    metadata,
    *tenant_key(),
    Column("weights", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("base_preset", Text),
    Column("election_id", Integer),
    Column("side", Text),
    at("updated_at"),
    Column("updated_by", Uuid),
    Column("swing_from_id", Integer),
)


ranking_snapshot = Table(
    "ranking_snapshot",
    metadata,
    *tenant_key(),
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("request_key", Text, nullable=False),
    Column("versions", JSONB, nullable=False),
    Column("inputs", JSONB, nullable=False),
    Column("factor_names", ARRAY(Text()), nullable=False),
    Column("mean", ARRAY(Double())),
    Column("sd", ARRAY(Double())),
    Column("n", ARRAY(Integer())),
    Column("districts", Integer, nullable=False, server_default=text("0")),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    at("refreshed_at", "clock_timestamp()"),
    UniqueConstraint("campaign_id", "request_key"),
)


ranking_value = Table(
    "ranking_value",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("snapshot_id", BigInteger, primary_key=True),
    Column("district_code", Text, primary_key=True),
    Column("commune_code", Text),
    Column("v", ARRAY(Double()), nullable=False),
    Column("z", ARRAY(Double()), nullable=False),
    Column("damping", Double, nullable=False, server_default=text("1")),
    Column("swing_change", Double),
    Column("population", Double),
    Column("households", Double),
    Column("poor_households", Double),
    Column("social_dwellings", Double),
    Column("doors", Integer),
    Column("tiles", Integer),
    Column("registered", Integer),
    Column("abstentions", Integer),
    Column("votes_cast", Integer),
    Column("supporters", Integer),
    Column("supporters_suppressed", Boolean, nullable=False, server_default=text("false")),
    Column("visited_doors", Integer),
    Column("visited_doors_suppressed", Boolean, nullable=False, server_default=text("false")),
    tenant_ref("snapshot_id", "ranking_snapshot", "CASCADE"),
)


ranking_scoring = Table(
    "ranking_scoring",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("snapshot_id", BigInteger, nullable=False),
    Column("weights_key", Text, nullable=False),
    Column("weights", JSONB, nullable=False),
    Column("snapshot_version", BigInteger, nullable=False),
    at("computed_at", "clock_timestamp()"),
    UniqueConstraint("campaign_id", "snapshot_id", "weights_key"),
    tenant_ref("snapshot_id", "ranking_snapshot", "CASCADE"),
    Index("ranking_scoring_snapshot", "campaign_id", "snapshot_id"),
)


ranking_score = Table(
    "ranking_score",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("scoring_id", BigInteger, primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("district_code", Text, nullable=False),
    Column("score", Double, nullable=False),
    UniqueConstraint("campaign_id", "scoring_id", "district_code"),
    tenant_ref("scoring_id", "ranking_scoring", "CASCADE"),
)


ranking_commune_score = Table(
    "ranking_commune_score",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("scoring_id", BigInteger, primary_key=True),
    Column("commune_code", Text, primary_key=True),
    Column("score", Double),
    Column("best_rank", Integer),
    Column("districts", Integer, nullable=False),
    Column("doors", Integer),
    Column("households", Double),
    Column("supporters", Integer),
    Column("visited_doors", Integer),
    tenant_ref("scoring_id", "ranking_scoring", "CASCADE"),
)


ranking_default = Table(
    "ranking_default",
    metadata,
    *tenant_key(),
    Column("scoring_id", BigInteger, nullable=False),
    Column("snapshot_id", BigInteger, nullable=False),
    at("set_at", "clock_timestamp()"),
    tenant_ref("scoring_id", "ranking_scoring", "CASCADE"),
)
