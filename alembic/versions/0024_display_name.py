"""Volunteers by name: an account's display name, chosen by its holder.

``app_user.display_name`` is what organisers see beside the e-mail when they pick who knocks
where (``GET /campaigns/{id}/volunteers``). Set when the account is created from an invitation,
by ``porte admin create --name``, or by its holder (``PATCH /auth/me``). Short, one line.

Revision ID: 0024_display_name
Revises: 0018_geocoder_france
"""

from alembic import op

revision = "0024_display_name"
down_revision = "0018_geocoder_france"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE app_user ADD COLUMN display_name text "
        "CONSTRAINT app_user_display_name_short CHECK ("
        "display_name IS NULL OR (char_length(display_name) BETWEEN 1 AND 80 "
        "AND display_name !~ '[[:cntrl:]]' AND display_name = btrim(display_name)))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE app_user DROP COLUMN display_name")
