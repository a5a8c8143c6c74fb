"""Maps: anything the tile and map layer needs (issue 8).

Revision ID: 0007_maps
Revises: 0006_ranking
"""

from alembic import op  # noqa: F401

revision = "0007_maps"
down_revision = "0006_ranking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
