"""Helpers used by Alembic revisions: campaign-table RLS and grants to the service role."""

from __future__ import annotations

import os

from alembic import op

APP_ROLE = os.environ.get("PORTE_APP_ROLE", "porte_app")


def campaign_table(table: str, *, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Enable and force RLS on ``table`` keyed on the transaction's campaign; grant to the app.

    A query that forgets ``WHERE campaign_id = ...`` still sees only the current campaign's rows,
    and none at all when no campaign is set.
    """
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY campaign_isolation ON {table} "
        "USING (campaign_id = porte_current_campaign()) "
        "WITH CHECK (campaign_id = porte_current_campaign())"
    )
    op.execute(f"GRANT {privileges} ON {table} TO {APP_ROLE}")


def reference_table(table: str) -> None:
    """Public reference data: the service reads it, only the owner writes it."""
    op.execute(f"GRANT SELECT ON {table} TO {APP_ROLE}")


def grant_sequences() -> None:
    """Let the service use every sequence (identity columns) of the schema."""
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
