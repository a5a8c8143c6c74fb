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


def run_script(script: str) -> None:
    """Execute a SQL script statement by statement (``;`` at end of line, outside ``$$`` bodies).

    The asyncpg driver prepares each statement, so a string holding several cannot be sent at once.
    """
    buf: list[str] = []
    in_body = False
    for line in script.splitlines():
        buf.append(line)
        if line.count("$$") % 2:
            in_body = not in_body
        if not in_body and line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";")
            if stmt and not all(ln.strip().startswith("--") for ln in stmt.splitlines()):
                op.execute(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest and not all(ln.strip().startswith("--") for ln in rest.splitlines()):
        op.execute(rest)
