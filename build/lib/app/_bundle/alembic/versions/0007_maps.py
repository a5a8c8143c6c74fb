"""Maps (issue 8): nothing to add to the schema.

The vector-tile queries (app/sql/tiles_*.sql) rely on indexes created with the tables they read:
``address_geom`` (GiST, 0002) to find a tile's doors, ``visit_round_door`` (0004) for "visited in
the current round", the ``door_flag`` primary key for "flagged", ``turf_geom`` (GiST on active
turfs, 0004) and ``assignment_turf`` / ``assignment_volunteer`` (0004). This revision is kept so
the chain stays one file per issue.

Revision ID: 0007_maps
Revises: 0006_ranking
"""

revision = "0007_maps"
down_revision = "0006_ranking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No schema change (see the module docstring)."""


def downgrade() -> None:
    """No schema change to undo."""
