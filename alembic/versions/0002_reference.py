"""Reference data: INSEE tiles, doors (addresses), districts, election results (issue 3).

Revision ID: 0002_reference
Revises: 0001_base
"""

from alembic import op  # noqa: F401

revision = "0002_reference"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
