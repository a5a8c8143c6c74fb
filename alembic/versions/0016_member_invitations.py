"""Server-level rights, and members who join by an invitation they accept.

``app_user.can_create_campaigns``: only accounts with this right (given on the server with
``porte admin create|rights --can-create-campaigns``, or by a server admin through the API) may
create campaigns. Accounts that already created one keep the right (upgrade).
``app_user.server_admin``: may give that right to others. Only the schema owner can make a server
admin (``porte admin create|rights --server-admin``, on the server): the service's role cannot
set the column (trigger ``app_user_server_admin``), so no request can make itself one.

``member_invitation``: adding someone to a campaign sends an e-mail with a link; they join by
accepting it (signed in with the account of that address, or creating the account with the
link). The answer to the admin is the same whether the address has an account or not. Only the
SHA-256 of the link's token is stored; links are single-use and expire.

Revision ID: 0016_member_invitations
Revises: 0015_session_versions
"""

from alembic import op

from app.migration_helpers import campaign_table

revision = "0016_member_invitations"
down_revision = "0015_session_versions"
branch_labels = None
depends_on = None

GUARD = """
CREATE FUNCTION porte_server_admin_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.server_admin)
       OR (TG_OP = 'UPDATE' AND NEW.server_admin IS DISTINCT FROM OLD.server_admin) THEN
        IF NOT pg_has_role(current_user,
                           (SELECT relowner FROM pg_class WHERE oid = 'app_user'::regclass),
                           'MEMBER') THEN
            RAISE EXCEPTION 'only the schema owner may change server_admin'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    """Rights columns and their guard, the invitation table."""
    op.execute(
        "ALTER TABLE app_user ADD COLUMN can_create_campaigns boolean NOT NULL DEFAULT false, "
        "ADD COLUMN server_admin boolean NOT NULL DEFAULT false"
    )
    op.execute(
        "UPDATE app_user SET can_create_campaigns = true WHERE id IN "
        "(SELECT created_by FROM campaign WHERE created_by IS NOT NULL)"
    )
    op.execute(GUARD)
    op.execute(
        "CREATE TRIGGER app_user_server_admin BEFORE INSERT OR UPDATE OF server_admin "
        "ON app_user FOR EACH ROW EXECUTE FUNCTION porte_server_admin_guard()"
    )
    op.execute(
        """
        CREATE TABLE member_invitation (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            email text NOT NULL
                CHECK (email = lower(email) AND email LIKE '%_@_%' AND length(email) <= 254),
            role text NOT NULL CHECK (role IN ('admin', 'organiser', 'analyst', 'volunteer')),
            token_hash text NOT NULL,
            invited_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            invited_by_role text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            accepted_at timestamptz,
            accepted_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            revoked_at timestamptz,
            PRIMARY KEY (campaign_id, id),
            UNIQUE (campaign_id, token_hash),
            CHECK (expires_at > created_at)
        )
        """
    )
    op.execute("CREATE INDEX member_invitation_email ON member_invitation (campaign_id, email)")
    op.execute(
        "CREATE INDEX member_invitation_created ON member_invitation (campaign_id, created_at)"
    )
    campaign_table("member_invitation", privileges="SELECT, INSERT, UPDATE")


def downgrade() -> None:
    """Drop the invitations and the rights."""
    op.execute("DROP TABLE IF EXISTS member_invitation")
    op.execute("DROP TRIGGER IF EXISTS app_user_server_admin ON app_user")
    op.execute("DROP FUNCTION IF EXISTS porte_server_admin_guard()")
    op.execute(
        "ALTER TABLE app_user DROP COLUMN IF EXISTS server_admin, "
        "DROP COLUMN IF EXISTS can_create_campaigns"
    )
