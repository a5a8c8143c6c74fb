"""Accounts, campaigns and who may do what: users, sessions (refresh tokens), memberships and
their invitations, volunteer invites, the audit log, throttling.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.authz import ROLES
from app.tables.meta import (
    TZ,
    at,
    length_between,
    metadata,
    one_of,
    serial_id,
    tenant_key,
    tenant_ref,
    user_ref,
    uuid_id,
)

app_user = Table(
    "app_user",
    metadata,
    uuid_id(),
    Column("email", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    at("created_at"),
    Column("totp_last_step", BigInteger),
    Column("totp_secret_enc", LargeBinary),
    Column("totp_key_id", Text),
    Column("token_version", Integer, nullable=False, server_default=text("0")),
    Column("can_create_campaigns", Boolean, nullable=False, server_default=text("false")),
    Column("server_admin", Boolean, nullable=False, server_default=text("false")),
    Column("display_name", Text),
    CheckConstraint("(totp_secret_enc IS NULL) = (totp_key_id IS NULL)", name="totp_key"),
    CheckConstraint(
        (
            "display_name IS NULL OR char_length(display_name) >= 1 AND "
            "char_length(display_name) <= 80 AND display_name !~ '[[:cntrl:]]'::text AND "
            "display_name = btrim(display_name)"
        ),
        name="display_name_short",
    ),
    CheckConstraint("email = lower(email) AND email ~~ '%%_@_%%'::text", name="email_check"),
    UniqueConstraint("email"),
)


refresh_token = Table(
    "refresh_token",
    metadata,
    uuid_id(),
    Column("family_id", Uuid, nullable=False),
    *user_ref("user_id", ondelete="CASCADE", nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("mfa", Boolean, nullable=False, server_default=text("false")),
    at("created_at"),
    Column("expires_at", TZ, nullable=False),
    Column("rotated_at", TZ),
    Column("revoked_at", TZ),
    at("session_started_at"),
    UniqueConstraint("token_hash"),
    Index("refresh_token_family", "family_id"),
    Index("refresh_token_user", "user_id"),
)


auth_failure = Table(
    "auth_failure",
    metadata,
    serial_id(),
    at("at"),
    Column("account_key", Text),
    Column("client", Text),
    Index("auth_failure_account", "account_key", "at"),
    Index("auth_failure_client", "client", "at"),
)


rate_event = Table(
    "rate_event",
    metadata,
    Column("scope", Text, nullable=False),
    Column("client", Text, nullable=False),
    at("at", "clock_timestamp()"),
    Index("rate_event_client", "scope", "client", "at"),
)


campaign = Table(
    "campaign",
    metadata,
    uuid_id(),
    Column("name", Text, nullable=False),
    Column("election_date", Date, nullable=False),
    Column("visit_retention_date", Date),
    Column("supporter_retention_months", Integer, nullable=False, server_default=text("36")),
    Column("k_threshold", Integer, nullable=False, server_default=text("11")),
    Column("require_2fa", Boolean, nullable=False, server_default=text("false")),
    Column("side", Text),
    *user_ref("created_by", ondelete=None),
    at("created_at"),
    Column("supporter_cells", Text, nullable=False, server_default=text("'district'::text")),
    CheckConstraint("k_threshold >= 2 AND k_threshold <= 1000", name="k_threshold_check"),
    length_between("name", 1, 200),
    CheckConstraint(
        "supporter_cells = ANY (ARRAY['district'::text, 'tile'::text])",
        name="supporter_cells",
    ),
    CheckConstraint(
        "supporter_retention_months >= 1 AND supporter_retention_months <= 120",
        name="supporter_retention_months_check",
    ),
)


campaign_change = Table(
    "campaign_change",
    metadata,
    *tenant_key(),
    Column("doors", BigInteger, nullable=False, server_default=text("0")),
    Column("supporters", BigInteger, nullable=False, server_default=text("0")),
    Column("turfs", BigInteger, nullable=False, server_default=text("0")),
)


# What the campaign covers (migration 0019): the whole country, départements, constituencies or
# communes; campaign_district lists its districts (written by porte_refresh_territory()).
campaign_territory = Table(
    "campaign_territory",
    metadata,
    *tenant_key(),
    Column("kind", Text, nullable=False, server_default=text("'country'::text")),
    Column("codes", ARRAY(Text()), nullable=False, server_default=text("'{}'::text[]")),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    Column("refreshed_for", Text, nullable=False, server_default=text("''::text")),
    at("updated_at"),
    Column("updated_by", Uuid),
    CheckConstraint(
        "kind = ANY (ARRAY['country'::text, 'departement'::text, 'constituency'::text, "
        "'communes'::text])",
        name="campaign_territory_kind_check",
    ),
    CheckConstraint(
        "(kind = 'country'::text) = (cardinality(codes) = 0)", name="campaign_territory_check"
    ),
)


campaign_district = Table(
    "campaign_district",
    metadata,
    *tenant_key(),
    Column("district_code", Text, primary_key=True),
)


membership = Table(
    "membership",
    metadata,
    *tenant_key(),
    *user_ref("user_id", ondelete="CASCADE", primary_key=True),
    Column("role", Text, nullable=False),
    at("created_at"),
    one_of("role", *ROLES),
    Index("membership_user", "user_id"),
)


member_invitation = Table(
    "member_invitation",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    *user_ref("invited_by"),
    Column("invited_by_role", Text, nullable=False),
    at("created_at"),
    Column("expires_at", TZ, nullable=False),
    Column("accepted_at", TZ),
    *user_ref("accepted_by"),
    Column("revoked_at", TZ),
    CheckConstraint(
        "email = lower(email) AND email ~~ '%%_@_%%'::text AND length(email) <= 254",
        name="email_check",
    ),
    CheckConstraint("expires_at > created_at", name="check"),
    one_of("role", *ROLES),
    UniqueConstraint("campaign_id", "token_hash"),
    Index("member_invitation_created", "campaign_id", "created_at"),
    Index("member_invitation_email", "campaign_id", "email"),
)


invite = Table(
    "invite",
    metadata,
    *tenant_key(),
    uuid_id(),
    Column("token_hash", Text, nullable=False),
    Column("assignment_id", Uuid),
    Column("label", Text),
    *user_ref("created_by"),
    at("created_at"),
    Column("expires_at", TZ, nullable=False),
    Column("revoked_at", TZ),
    CheckConstraint("expires_at > created_at", name="check"),
    CheckConstraint("length(label) <= 200", name="label_check"),
    # assignment refers to invite too: one of the two keys is added after both tables
    tenant_ref(
        "assignment_id", "assignment", "SET NULL", name="invite_assignment_fk", use_alter=True
    ),
    UniqueConstraint("campaign_id", "token_hash", name="invite_token_hash_key"),
    Index("invite_assignment", "campaign_id", "assignment_id"),
)


audit_event = Table(
    "audit_event",
    metadata,
    *tenant_key(),
    serial_id(),
    at("at"),
    Column("actor_user_id", Uuid),
    Column("actor_invite_id", Uuid),
    Column("role", Text),
    Column("action", Text, nullable=False),
    Column("object", Text),
    Column("row_count", Integer),
    Column("request_id", Text),
    Column("client", Text),
    Column("flagged", Boolean, nullable=False, server_default=text("false")),
    Column("details", JSONB),
    CheckConstraint("client ~ '^[-0-9A-Za-z:._%%/]{1,100}$'::text", name="client_token"),
    CheckConstraint("request_id ~ '^[-A-Za-z0-9._]{1,64}$'::text", name="request_id_token"),
    Index("audit_event_actor", "campaign_id", "actor_user_id", "at"),
    Index("audit_event_at", "campaign_id", "at"),
    Index("audit_event_invite", "campaign_id", "actor_invite_id", "at"),
)
