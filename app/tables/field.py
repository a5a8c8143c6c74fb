"""Canvassing in the field: turfs and their doors, assignments, canvass rounds, visits,
do-not-knock flags.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from app.tables.meta import TZ, at, metadata, tenant_key, uuid_id

turf = Table(
    "turf",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("name", Text, nullable=False),
    Column("district_code", Text),
    Column("geom", Geometry(srid=4326, spatial_index=False), nullable=False),
    Column("status", Text, nullable=False, server_default=text("'active'::text")),
    Column("origin", Text, nullable=False, server_default=text("'drawn'::text")),
    Column("door_count", Integer, nullable=False, server_default=text("0")),
    Column("households", REAL, nullable=False, server_default=text("0")),
    Column("walk_length_m", REAL),
    Column("compactness", REAL),
    Column("created_by", Uuid),
    at("created_at"),
    Column("archived_at", TZ),
    CheckConstraint(
        "geometrytype(geom) = ANY (ARRAY['POLYGON'::text, 'MULTIPOLYGON'::text])",
        name="turf_geom_check",
    ),
    CheckConstraint("length(name) >= 1 AND length(name) <= 200", name="turf_name_check"),
    CheckConstraint("origin = ANY (ARRAY['drawn'::text, 'cut'::text])", name="turf_origin_check"),
    CheckConstraint(
        "status = ANY (ARRAY['active'::text, 'archived'::text])", name="turf_status_check"
    ),
    ForeignKeyConstraint(["created_by"], ["app_user.id"], ondelete="SET NULL"),
    Index("turf_district", "campaign_id", "district_code", "status"),
    Index(
        "turf_geom", "geom", postgresql_using="gist", postgresql_where="(status = 'active'::text)"
    ),
)


turf_door = Table(
    "turf_door",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("turf_id", Uuid, primary_key=True),
    Column("address_id", BigInteger, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    ForeignKeyConstraint(
        ["campaign_id", "turf_id"], ["turf.campaign_id", "turf.id"], ondelete="CASCADE"
    ),
    Index(
        "turf_door_one_active_turf",
        "campaign_id",
        "address_id",
        postgresql_where="active",
        unique=True,
    ),
)


assignment = Table(
    "assignment",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("turf_id", Uuid, nullable=False),
    Column("volunteer_user_id", Uuid),
    Column("invite_id", Uuid),
    at("starts_at"),
    Column("ends_at", TZ),
    Column("created_by", Uuid),
    at("created_at"),
    Column("ended_at", TZ),
    CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="assignment_check"),
    ForeignKeyConstraint(
        ["campaign_id", "invite_id"],
        ["invite.campaign_id", "invite.id"],
        ondelete="SET NULL (invite_id)",
    ),
    ForeignKeyConstraint(
        ["campaign_id", "turf_id"], ["turf.campaign_id", "turf.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(["created_by"], ["app_user.id"], ondelete="SET NULL"),
    ForeignKeyConstraint(["volunteer_user_id"], ["app_user.id"], ondelete="SET NULL"),
    Index("assignment_turf", "campaign_id", "turf_id"),
    Index(
        "assignment_volunteer",
        "campaign_id",
        "volunteer_user_id",
        postgresql_where="(volunteer_user_id IS NOT NULL)",
    ),
)


assignment_door = Table(
    "assignment_door",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("assignment_id", Uuid, primary_key=True),
    Column("address_id", BigInteger, primary_key=True),
    Column("seq", Integer, nullable=False),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    ForeignKeyConstraint(
        ["campaign_id", "assignment_id"],
        ["assignment.campaign_id", "assignment.id"],
        ondelete="CASCADE",
    ),
    Index("assignment_door_address", "campaign_id", "address_id"),
)


canvass_round = Table(
    "canvass_round",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("number", Integer, nullable=False),
    Column("name", Text),
    at("started_at"),
    Column("created_by", Uuid),
    CheckConstraint("length(name) <= 200", name="canvass_round_name_check"),
    CheckConstraint("number >= 1", name="canvass_round_number_check"),
    ForeignKeyConstraint(["created_by"], ["app_user.id"], ondelete="SET NULL"),
    UniqueConstraint("campaign_id", "number"),
)


visit = Table(
    "visit",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("id", Uuid, primary_key=True),
    Column("address_id", BigInteger, nullable=False),
    Column("assignment_id", Uuid),
    Column("round_id", Uuid, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("flat", Text),
    Column("visited_at", TZ, nullable=False),
    at("recorded_at"),
    Column("volunteer_user_id", Uuid),
    Column("invite_id", Uuid),
    CheckConstraint(
        (
            "flat IS NULL OR length(flat) <= 6 AND flat ~ "
            "'^([A-Z]|[-A-Z]{0,5}[0-9][-0-9A-Z]{0,5})$'::text"
        ),
        name="visit_flat_designation",
    ),
    CheckConstraint(
        (
            "outcome = ANY (ARRAY['not_home'::text, 'talked'::text, 'refused'::text, "
            "'moved'::text, 'no_access'::text, 'do_not_knock'::text])"
        ),
        name="visit_outcome_check",
    ),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    ForeignKeyConstraint(
        ["campaign_id", "assignment_id"],
        ["assignment.campaign_id", "assignment.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["campaign_id", "round_id"],
        ["canvass_round.campaign_id", "canvass_round.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(["volunteer_user_id"], ["app_user.id"], ondelete="SET NULL"),
    Index("visit_assignment", "campaign_id", "assignment_id"),
    Index("visit_door", "campaign_id", "address_id"),
    Index("visit_round_door", "campaign_id", "round_id", "address_id"),
)


door_flag = Table(
    "door_flag",
    metadata,
    *tenant_key(),
    Column("address_id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False, server_default=text("'do_not_knock'::text")),
    at("created_at"),
    Column("request_id", Uuid),
    CheckConstraint("kind = 'do_not_knock'::text", name="door_flag_kind_check"),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    ForeignKeyConstraint(
        ["campaign_id", "request_id"],
        ["privacy_request.campaign_id", "privacy_request.id"],
        ondelete="SET NULL (request_id)",
        name="door_flag_request_fk",
    ),
    Index("door_flag_request", "campaign_id", "request_id"),
)
