"""Access: refresh tokens, invites, sign-in throttling, TOTP (issue 4).

Revision ID: 0003_access
Revises: 0002_reference
"""

from alembic import op  # noqa: F401

revision = "0003_access"
down_revision = "0002_reference"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
