"""Consented supporters and the GDPR: supporters (identity encrypted at rest), their consents
and tags, privacy requests, the campaign's privacy notice, retention.
"""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import INTERVAL, JSONB

from app.tables.meta import (
    TZ,
    at,
    child_key,
    length_between,
    metadata,
    one_of,
    serial_id,
    tenant_key,
    uuid_id,
)

supporter = Table(
    "supporter",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("status", Text, nullable=False, server_default=text("'active'::text")),
    Column("key_id", Text),
    Column("name_enc", LargeBinary),
    Column("email_enc", LargeBinary),
    Column("phone_enc", LargeBinary),
    Column("address_enc", LargeBinary),
    Column("notes_enc", LargeBinary),
    Column("email_hmac", LargeBinary),
    Column("phone_hmac", LargeBinary),
    Column("geocode_level", Text, nullable=False, server_default=text("'none'::text")),
    Column("geocode_score", REAL),
    Column("geocode_note", Text),
    at("last_contact_at"),
    at("created_at"),
    at("updated_at"),
    Column("withdrawn_at", TZ),
    Column("address_id_enc", LargeBinary),
    Column("point_enc", LargeBinary),
    Column("tile_id", Text),
    Column("bv_code", Text),
    Column("iris_code", Text),
    Column("cells_version", BigInteger),
    one_of("geocode_level", "housenumber", "interpolated", "street", "commune", "none", "manual"),
    CheckConstraint(
        (
            "key_id IS NOT NULL OR name_enc IS NULL AND email_enc IS NULL AND phone_enc IS "
            "NULL AND address_enc IS NULL AND notes_enc IS NULL AND address_id_enc IS NULL "
            "AND point_enc IS NULL"
        ),
        name="ciphertext_has_key",
    ),
    CheckConstraint(
        (
            "status = 'active'::text OR name_enc IS NULL AND email_enc IS NULL AND phone_enc "
            "IS NULL AND address_enc IS NULL AND notes_enc IS NULL AND address_id_enc IS NULL"
            " AND point_enc IS NULL AND tile_id IS NULL AND bv_code IS NULL AND iris_code IS "
            "NULL AND withdrawn_at IS NOT NULL"
        ),
        name="withdrawn_has_no_identity",
    ),
    one_of("status", "active", "withdrawn"),
    Index(
        "supporter_cells",
        "campaign_id",
        "cells_version",
        postgresql_where="(point_enc IS NOT NULL)",
    ),
    Index("supporter_contact", "campaign_id", "last_contact_at"),
    Index(
        "supporter_email_dup",
        "campaign_id",
        "email_hmac",
        postgresql_where="((status = 'active'::text) AND (email_hmac IS NOT NULL))",
        unique=True,
    ),
    Index("supporter_email_hmac", "campaign_id", "email_hmac"),
    Index("supporter_key", "key_id"),
    Index(
        "supporter_phone_dup",
        "campaign_id",
        "phone_hmac",
        postgresql_where="((status = 'active'::text) AND (phone_hmac IS NOT NULL))",
        unique=True,
    ),
    Index(
        "supporter_review",
        "campaign_id",
        "geocode_level",
        postgresql_where="(status = 'active'::text)",
    ),
)


supporter_consent = Table(
    "supporter_consent",
    metadata,
    *child_key("supporter", "supporter_id"),
    Column("purpose", Text, primary_key=True),
    Column("given_at", TZ, nullable=False),
    Column("given_by_subject", Boolean, nullable=False),
    Column("channel", Text),
    Column("wording_version", Text),
    Column("notice_version", Text),
    Column("collected_by", Text, nullable=False),
    Column("recorded_by", Uuid),
    at("recorded_at"),
    Column("withdrawn_at", TZ),
    Column("withdrawal_channel", Text),
    Column("basis", Text, nullable=False, server_default=text("'consent'::text")),
    Column("evidence", Text),
    Column("evidence_at", TZ),
    Column("source", Text),
    CheckConstraint(
        (
            "CASE WHEN basis = 'consent'::text THEN given_by_subject AND channel IS NOT NULL"
            " AND wording_version IS NOT NULL AND notice_version IS NOT NULL"
            " ELSE NOT given_by_subject AND evidence IS NOT NULL AND source IS NOT NULL END"
        ),
        name="given_by_subject_or_evidence",
    ),
    one_of("basis", "consent", "member", "former_member", "regular_contact"),
    one_of("channel", "door", "form", "event", "membership"),
    CheckConstraint("given_at <= (recorded_at + '1 day'::interval)", name="check"),
    length_between("collected_by", 1, 200),
    length_between("evidence", 1, 300),
    length_between("notice_version", 1, 100),
    length_between("source", 1, 100),
    length_between("wording_version", 1, 100),
    one_of("purpose", "contact", "mapping", "volunteering", "newsletter"),
)


supporter_tag = Table(
    "supporter_tag",
    metadata,
    *child_key("supporter", "supporter_id"),
    Column("tag", Text, primary_key=True),
    CheckConstraint("tag ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'::text", name="tag_check"),
)


privacy_request = Table(
    "privacy_request",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("kind", Text, nullable=False),
    at("received_at"),
    Column("status", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("key_id", Text),
    Column("address_enc", LargeBinary),
    Column("resolved_at", TZ),
    Column("resolved_by", Uuid),
    Column("token_hash", Text),
    Column("expires_at", TZ),
    Column("supporter_id", Uuid),
    Column("confirmed_at", TZ),
    Column("origin", Text),
    Column("address_id", BigInteger),
    CheckConstraint(
        (
            "(status = 'unconfirmed'::text) = (token_hash IS NOT NULL) AND (token_hash IS "
            "NULL OR expires_at IS NOT NULL AND supporter_id IS NOT NULL)"
        ),
        name="token_single_use",
    ),
    CheckConstraint("address_enc IS NULL OR key_id IS NOT NULL", name="check"),
    one_of("kind", "objection", "withdrawal", "export", "erasure"),
    one_of("status", "pending", "done", "unconfirmed", "reverted"),
    Index("privacy_request_key", "key_id", postgresql_where="(address_enc IS NOT NULL)"),
    Index("privacy_request_recent", "campaign_id", "kind", "received_at"),
    Index(
        "privacy_request_token",
        "campaign_id",
        "token_hash",
        postgresql_where="(token_hash IS NOT NULL)",
        unique=True,
    ),
)


campaign_privacy = Table(
    "campaign_privacy",
    metadata,
    *tenant_key(),
    Column("controller", Text, nullable=False),
    Column("contact_email", Text, nullable=False),
    Column("postal_address", Text),
    Column("dpo_contact", Text),
    Column("notice_version", Text, nullable=False, server_default=text("'v1'::text")),
    at("updated_at"),
    CheckConstraint("contact_email ~~ '%%_@_%%'::text", name="contact_email_check"),
    length_between("controller", 1, 300),
)


retention_policy = Table(
    "retention_policy",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("visit_max", INTERVAL, nullable=False, server_default=text("'1 mon 7 days'::interval")),
    at("updated_at"),
    CheckConstraint("id", name="id_check"),
    CheckConstraint(
        "visit_max >= '1 mon'::interval AND visit_max <= '6 mons'::interval",
        name="visit_max_check",
    ),
)


retention_archive = Table(
    "retention_archive",
    metadata,
    *tenant_key(),
    serial_id(),
    at("purged_at"),
    Column("kind", Text, nullable=False),
    Column("counts", JSONB, nullable=False),
)
