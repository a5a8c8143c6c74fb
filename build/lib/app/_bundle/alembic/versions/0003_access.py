"""Access: invites, refresh tokens, sign-in throttling, TOTP replay guard (issue 4).

Revision ID: 0003_access
Revises: 0002_reference
"""

from alembic import op

from app.migration_helpers import APP_ROLE, campaign_table, grant_sequences

revision = "0003_access"
down_revision = "0002_reference"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Volunteer invite links. The raw token is never stored: only its SHA-256. The QR code is
    # re-derived from the invite id and the service's secret key (app.services.invites).
    # assignment_id has no foreign key here: the assignment table arrives with issue 7 (0004).
    op.execute(
        """
        CREATE TABLE invite (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            token_hash text NOT NULL UNIQUE,
            assignment_id uuid,
            label text CHECK (length(label) <= 200),
            created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz,
            PRIMARY KEY (campaign_id, id),
            CHECK (expires_at > created_at)
        )
        """
    )
    op.execute("CREATE INDEX invite_assignment ON invite (campaign_id, assignment_id)")
    campaign_table("invite", privileges="SELECT, INSERT, UPDATE")

    # Refresh tokens: opaque, stored hashed, rotated on every use. All tokens descending from one
    # sign-in share a family; presenting an already-rotated token revokes the whole family.
    op.execute(
        """
        CREATE TABLE refresh_token (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            family_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
            token_hash text NOT NULL UNIQUE,
            mfa boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            rotated_at timestamptz,
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX refresh_token_family ON refresh_token (family_id)")
    op.execute("CREATE INDEX refresh_token_user ON refresh_token (user_id)")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_token TO {APP_ROLE}")

    # Failed sign-ins, in PostgreSQL so that the limit holds across workers and servers.
    # account_key is a keyed hash of the e-mail typed (never the e-mail: it may not be an account).
    op.execute(
        """
        CREATE TABLE auth_failure (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            account_key text,
            client text
        )
        """
    )
    op.execute("CREATE INDEX auth_failure_account ON auth_failure (account_key, at)")
    op.execute("CREATE INDEX auth_failure_client ON auth_failure (client, at)")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON auth_failure TO {APP_ROLE}")

    # TOTP: the last accepted time step, so that one code cannot be replayed.
    op.execute("ALTER TABLE app_user ADD COLUMN totp_last_step bigint")

    # Burst detection counts an actor's recent events.
    op.execute("CREATE INDEX audit_event_actor ON audit_event (campaign_id, actor_user_id, at)")
    op.execute("CREATE INDEX audit_event_invite ON audit_event (campaign_id, actor_invite_id, at)")
    grant_sequences()


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS audit_event_invite")
    op.execute("DROP INDEX IF EXISTS audit_event_actor")
    op.execute("ALTER TABLE app_user DROP COLUMN IF EXISTS totp_last_step")
    op.execute("DROP TABLE IF EXISTS auth_failure")
    op.execute("DROP TABLE IF EXISTS refresh_token")
    op.execute("DROP TABLE IF EXISTS invite")
