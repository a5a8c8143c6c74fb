"""Ready for several servers and for Citus.

- ``invite``: the token hash is unique per campaign (``UNIQUE (campaign_id, token_hash)``) instead
  of across the database: a table distributed by ``campaign_id`` (Citus) can only enforce
  constraints that include it. Invites are looked up by (campaign, id), and a token is 32 random
  bytes, so nothing else changes.
- ``rate_event``: requests counted by client address for rate limits that must hold across
  workers and servers (the public privacy form). Rows live one hour.

Revision ID: 0022_scale
Revises: 0021_allocation_incremental
"""

from alembic import op

from app.migration_helpers import APP_ROLE

revision = "0022_scale"
down_revision = "0021_allocation_incremental"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invite DROP CONSTRAINT invite_token_hash_key")
    op.execute(
        "ALTER TABLE invite ADD CONSTRAINT invite_token_hash_key UNIQUE (campaign_id, token_hash)"
    )
    op.execute(
        """
        CREATE TABLE rate_event (
            scope text NOT NULL,
            client text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX rate_event_client ON rate_event (scope, client, at)")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON rate_event TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE rate_event")
    op.execute("ALTER TABLE invite DROP CONSTRAINT invite_token_hash_key")
    op.execute("ALTER TABLE invite ADD CONSTRAINT invite_token_hash_key UNIQUE (token_hash)")
