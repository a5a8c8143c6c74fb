"""One partition of supporter counts per campaign: ``campaign.supporter_cells``.

Supporter counts were published per polling station, per IRIS and per 200 m tile at once: these
partitions overlap, so a district's count minus the tiles shown inside it gave a hidden tile.
A campaign now publishes them on one partition only, chosen by its admin: ``district`` (default,
the districts the ranking uses) or ``tile`` (INSEE 200 m tiles; the ranking then has no
supporter factor). See app/disclosure.py and docs/privacy.md.

Revision ID: 0023_supporter_cells
Revises: 0017_smaller_holes
"""

from alembic import op

revision = "0023_supporter_cells"
down_revision = "0017_smaller_holes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Every existing campaign keeps its district counts (the ranking's). Cached rankings were
    computed from raw counts (only those below k blanked): dropped, they are recomputed from the
    published counts on the next request (the district tiles read the latest one)."""
    op.execute(
        "ALTER TABLE campaign ADD COLUMN supporter_cells text NOT NULL DEFAULT 'district' "
        "CONSTRAINT campaign_supporter_cells CHECK (supporter_cells IN ('district', 'tile'))"
    )
    op.execute("DELETE FROM ranking_cache")


def downgrade() -> None:
    """Back to no setting."""
    op.execute("ALTER TABLE campaign DROP COLUMN supporter_cells")
