"""Ranking swing (issue 6): the campaign's reference election for the swing factor.

``ranking_settings.swing_from_id``: the earlier election the swing is measured from (NULL = the
default: the most recent other loaded election whose candidates include the side).

Revision ID: 0008_swing
Revises: 0007_maps
"""

from alembic import op

revision = "0008_swing"
down_revision = "0007_maps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the swing reference election to the campaign's ranking settings."""
    op.execute("ALTER TABLE ranking_settings ADD COLUMN swing_from_id integer")


def downgrade() -> None:
    """Drop the swing reference election."""
    op.execute("ALTER TABLE ranking_settings DROP COLUMN IF EXISTS swing_from_id")
