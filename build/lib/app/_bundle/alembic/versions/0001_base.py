"""Base: extensions, tenant functions, accounts, campaigns, memberships, audit log.

Revision ID: 0001_base
Revises:
"""

from alembic import op

from app.migration_helpers import APP_ROLE, campaign_table, grant_sequences

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Extensions need a superuser; `porte db` pre-creates them, IF NOT EXISTS then is a no-op.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN;
          END IF;
        END $$;
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")

    # The tenant of the current transaction (SET LOCAL porte.campaign_id), NULL when unset.
    op.execute(
        """
        CREATE FUNCTION porte_current_campaign() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT nullif(current_setting('porte.campaign_id', true), '')::uuid $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION porte_current_user() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT nullif(current_setting('porte.user_id', true), '')::uuid $$
        """
    )

    op.execute(
        """
        CREATE TABLE app_user (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            email text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
            password_hash text NOT NULL,
            totp_secret text,
            totp_enabled boolean NOT NULL DEFAULT false,
            is_active boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON app_user TO {APP_ROLE}")

    op.execute(
        """
        CREATE TABLE campaign (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            election_date date NOT NULL,
            visit_retention_date date,
            supporter_retention_months integer NOT NULL DEFAULT 36
                CHECK (supporter_retention_months BETWEEN 1 AND 120),
            k_threshold integer NOT NULL DEFAULT 11 CHECK (k_threshold BETWEEN 2 AND 1000),
            require_2fa boolean NOT NULL DEFAULT false,
            side text,
            created_by uuid REFERENCES app_user(id),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE membership (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
            role text NOT NULL CHECK (role IN ('admin', 'organiser', 'analyst', 'volunteer')),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (campaign_id, user_id)
        )
        """
    )
    op.execute("CREATE INDEX membership_user ON membership (user_id)")
    # membership: the current campaign's rows, plus the caller's own memberships (to list them).
    op.execute("ALTER TABLE membership ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE membership FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY campaign_isolation ON membership "
        "USING (campaign_id = porte_current_campaign() OR user_id = porte_current_user()) "
        "WITH CHECK (campaign_id = porte_current_campaign())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON membership TO {APP_ROLE}")
    # campaign: the current one, plus those the caller is a member of.
    op.execute("ALTER TABLE campaign ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE campaign FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY campaign_isolation ON campaign "
        "USING (id = porte_current_campaign() OR EXISTS ("
        "  SELECT 1 FROM membership m WHERE m.campaign_id = campaign.id "
        "  AND m.user_id = porte_current_user())) "
        "WITH CHECK (id = porte_current_campaign())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON campaign TO {APP_ROLE}")

    op.execute(
        """
        CREATE TABLE audit_event (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id bigint GENERATED ALWAYS AS IDENTITY,
            at timestamptz NOT NULL DEFAULT now(),
            actor_user_id uuid,
            actor_invite_id uuid,
            role text,
            action text NOT NULL,
            object text,
            row_count integer,
            request_id text,
            client text,
            flagged boolean NOT NULL DEFAULT false,
            details jsonb,
            PRIMARY KEY (campaign_id, id)
        )
        """
    )
    op.execute("CREATE INDEX audit_event_at ON audit_event (campaign_id, at)")
    # Append-only for the service: it may insert and read, never update or delete.
    campaign_table("audit_event", privileges="SELECT, INSERT")
    grant_sequences()


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS audit_event")
    op.execute("DROP TABLE IF EXISTS membership CASCADE")
    op.execute("DROP TABLE IF EXISTS campaign CASCADE")
    op.execute("DROP TABLE IF EXISTS app_user CASCADE")
    op.execute("DROP FUNCTION IF EXISTS porte_current_user()")
    op.execute("DROP FUNCTION IF EXISTS porte_current_campaign()")
