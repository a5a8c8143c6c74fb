"""Ranking weights, allocation of tiles to districts, ranking cache (issue 6).

Revision ID: 0006_ranking
Revises: 0005_supporters
"""

from alembic import op  # noqa: F401

revision = "0006_ranking"
down_revision = "0005_supporters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
