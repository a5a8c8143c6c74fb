"""Turf, assignments, rounds, visits, door flags (issue 7).

Revision ID: 0004_turf_visits
Revises: 0003_access
"""

from alembic import op  # noqa: F401

revision = "0004_turf_visits"
down_revision = "0003_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
