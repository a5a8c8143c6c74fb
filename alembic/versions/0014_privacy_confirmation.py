"""The public privacy form cannot be used against people (issue 12, section 3).

- ``privacy_request``: new kinds ``export`` and ``erasure``; a withdrawal, export or erasure asked
  on the form waits (``status = 'unconfirmed'``) for the person to open the single-use link sent
  to the e-mail held for them. Only the SHA-256 of the link's secret is kept (``token_hash``),
  with its expiry (``expires_at``, 48 h) and the supporter it is about; confirming clears the hash
  (the database refuses a hash on a request that is no longer waiting). ``origin`` is the coarse
  network of the sender (``/24`` or ``/48``, never the address); ``address_id`` the door an
  objection flagged. ``reverted``: an objection the admin undid.
- ``door_flag.request_id``: the form request that created the flag, so that the admin can revert
  a flood in bulk without touching flags recorded by volunteers or admins (those clear it).
- ``audit_event.client`` may hold a network (``203.0.113.0/24``, ``2001:db8:1::/48``): the form's
  events carry the sender's coarse network, never the address (0017's token rule plus ``/``).

Revision ID: 0014_privacy_confirmation
Revises: 0013_supporter_location_at_rest
"""

from alembic import op

from app.migration_helpers import APP_ROLE

# 0017's rule for audit_event.client, and the same with '/' (app.services.access.audit.safe_token)
CLIENT_0017 = "^[-0-9A-Za-z:._%]{1,100}$"
CLIENT = "^[-0-9A-Za-z:._%/]{1,100}$"

revision = "0014_privacy_confirmation"
down_revision = "0013_supporter_location_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE privacy_request DROP CONSTRAINT privacy_request_kind_check")
    op.execute("ALTER TABLE privacy_request DROP CONSTRAINT privacy_request_status_check")
    op.execute(
        "ALTER TABLE privacy_request ADD CONSTRAINT privacy_request_kind_check "
        "CHECK (kind IN ('objection', 'withdrawal', 'export', 'erasure'))"
    )
    op.execute(
        "ALTER TABLE privacy_request ADD CONSTRAINT privacy_request_status_check "
        "CHECK (status IN ('pending', 'done', 'unconfirmed', 'reverted'))"
    )
    op.execute(
        "ALTER TABLE privacy_request ADD COLUMN token_hash text, "
        "ADD COLUMN expires_at timestamptz, ADD COLUMN supporter_id uuid, "
        "ADD COLUMN confirmed_at timestamptz, ADD COLUMN origin text, "
        "ADD COLUMN address_id bigint"
    )
    # A link works once: only a request still waiting for its confirmation holds a hash.
    op.execute(
        "ALTER TABLE privacy_request ADD CONSTRAINT privacy_request_token_single_use CHECK "
        "((status = 'unconfirmed') = (token_hash IS NOT NULL) AND "
        "(token_hash IS NULL OR (expires_at IS NOT NULL AND supporter_id IS NOT NULL)))"
    )
    op.execute(
        "CREATE UNIQUE INDEX privacy_request_token ON privacy_request (campaign_id, token_hash) "
        "WHERE token_hash IS NOT NULL"
    )
    # rate limits and the alert count a campaign's recent objections (per origin too)
    op.execute(
        "CREATE INDEX privacy_request_recent ON privacy_request (campaign_id, kind, received_at)"
    )

    op.execute("ALTER TABLE door_flag ADD COLUMN request_id uuid")
    op.execute(
        "ALTER TABLE door_flag ADD CONSTRAINT door_flag_request_fk FOREIGN KEY "
        "(campaign_id, request_id) REFERENCES privacy_request (campaign_id, id) "
        "ON DELETE SET NULL (request_id)"
    )
    op.execute("CREATE INDEX door_flag_request ON door_flag (campaign_id, request_id)")
    # A volunteer's or an admin's flag on a door the form flagged makes it theirs (not revertible).
    op.execute(f"GRANT UPDATE (request_id) ON door_flag TO {APP_ROLE}")

    op.execute("ALTER TABLE audit_event DROP CONSTRAINT audit_event_client_token")
    op.execute(
        f"ALTER TABLE audit_event ADD CONSTRAINT audit_event_client_token CHECK "
        f"(client ~ '{CLIENT}')"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE audit_event DROP CONSTRAINT audit_event_client_token")
    op.execute("UPDATE audit_event SET client = replace(client, '/', '_') WHERE client LIKE '%/%'")
    op.execute(
        f"ALTER TABLE audit_event ADD CONSTRAINT audit_event_client_token CHECK "
        f"(client ~ '{CLIENT_0017}')"
    )
    op.execute(f"REVOKE UPDATE (request_id) ON door_flag FROM {APP_ROLE}")
    op.execute("DROP INDEX IF EXISTS door_flag_request")
    op.execute("ALTER TABLE door_flag DROP CONSTRAINT IF EXISTS door_flag_request_fk")
    op.execute("ALTER TABLE door_flag DROP COLUMN IF EXISTS request_id")
    op.execute("DROP INDEX IF EXISTS privacy_request_recent")
    op.execute("DROP INDEX IF EXISTS privacy_request_token")
    op.execute("ALTER TABLE privacy_request DROP CONSTRAINT privacy_request_token_single_use")
    # requests the old schema cannot hold: links waiting, exports, erasures, reverted objections
    op.execute("DELETE FROM privacy_request WHERE kind IN ('export', 'erasure')")
    op.execute("DELETE FROM privacy_request WHERE status = 'unconfirmed'")
    op.execute("UPDATE privacy_request SET status = 'done' WHERE status = 'reverted'")
    op.execute(
        "ALTER TABLE privacy_request DROP COLUMN token_hash, DROP COLUMN expires_at, "
        "DROP COLUMN supporter_id, DROP COLUMN confirmed_at, DROP COLUMN origin, "
        "DROP COLUMN address_id"
    )
    op.execute("ALTER TABLE privacy_request DROP CONSTRAINT privacy_request_kind_check")
    op.execute("ALTER TABLE privacy_request DROP CONSTRAINT privacy_request_status_check")
    op.execute(
        "ALTER TABLE privacy_request ADD CONSTRAINT privacy_request_kind_check "
        "CHECK (kind IN ('objection', 'withdrawal'))"
    )
    op.execute(
        "ALTER TABLE privacy_request ADD CONSTRAINT privacy_request_status_check "
        "CHECK (status IN ('pending', 'done'))"
    )
