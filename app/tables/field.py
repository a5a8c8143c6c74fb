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

from app.tables.meta import (
    TZ,
    at,
    child_key,
    length_between,
    metadata,
    one_of,
    tenant_key,
    tenant_ref,
    user_ref,
    uuid_id,
)

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
    *user_ref("created_by"),
    at("created_at"),
    Column("archived_at", TZ),
    CheckConstraint(
        "geometrytype(geom) = ANY (ARRAY['POLYGON'::text, 'MULTIPOLYGON'::text])",
        name="geom_check",
    ),
    length_between("name", 1, 200),
    one_of("origin", "drawn", "cut"),
    one_of("status", "active", "archived"),
    Index("turf_district", "campaign_id", "district_code", "status"),
    Index(
        "turf_geom", "geom", postgresql_using="gist", postgresql_where="(status = 'active'::text)"
    ),
)


turf_door = Table(
    "turf_door",
    metadata,
    *child_key("turf", "turf_id"),
    Column("address_id", BigInteger, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
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
    *user_ref("volunteer_user_id"),
    Column("invite_id", Uuid),
    at("starts_at"),
    Column("ends_at", TZ),
    *user_ref("created_by"),
    at("created_at"),
    Column("ended_at", TZ),
    CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="check"),
    tenant_ref("invite_id", "invite", "SET NULL"),
    tenant_ref("turf_id", "turf", "CASCADE"),
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
    *child_key("assignment", "assignment_id"),
    Column("address_id", BigInteger, primary_key=True),
    Column("seq", Integer, nullable=False),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
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
    *user_ref("created_by"),
    CheckConstraint("length(name) <= 200", name="name_check"),
    CheckConstraint("number >= 1", name="number_check"),
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
    *user_ref("volunteer_user_id"),
    Column("invite_id", Uuid),
    CheckConstraint(
        (
            "flat IS NULL OR length(flat) <= 6 AND flat ~ "
            "'^([A-Z]|[-A-Z]{0,5}[0-9][-0-9A-Z]{0,5})$'::text"
        ),
        name="flat_designation",
    ),
    one_of("outcome", "not_home", "talked", "refused", "moved", "no_access", "do_not_knock"),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    tenant_ref("assignment_id", "assignment", "CASCADE"),
    tenant_ref("round_id", "canvass_round", "CASCADE"),
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
    CheckConstraint("kind = 'do_not_knock'::text", name="kind_check"),
    ForeignKeyConstraint(["address_id"], ["address.id"]),
    tenant_ref("request_id", "privacy_request", "SET NULL", name="door_flag_request_fk"),
    Index("door_flag_request", "campaign_id", "request_id"),
)
