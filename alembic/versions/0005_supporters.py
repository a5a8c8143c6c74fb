"""Consented supporters, consent records, geocoding, GDPR requests (issue 5).

Revision ID: 0005_supporters
Revises: 0004_turf_visits
"""

from alembic import op  # noqa: F401

revision = "0005_supporters"
down_revision = "0004_turf_visits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
