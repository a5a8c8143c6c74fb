"""The current round and a door's status, each written once, as SQL functions.

Before this, the rule "the current round is the campaign's round with the highest number" and
the rule "a door is flagged if it has a door_flag, else visited if it has a visit in the current
round, else pending" were spelled out again in every statement that needed them (the door tiles,
their grid and volunteer variants, the turf tiles, the assignment's doors, the list of turfs).
Now:

- ``current_round(campaign)``: zero or one row (``id``, ``number``) of ``canvass_round``;
- ``door_status(campaign, door)``: one row, ``status`` = ``'flagged'``, ``'visited'`` or
  ``'pending'``.

Both are ``LANGUAGE sql STABLE`` functions returning a set, without ``STRICT``, ``SECURITY
DEFINER`` or ``SET``: PostgreSQL inlines them into the calling statement (``FROM ...,
LATERAL door_status(:c, a.id) s``), so the plans stay those of the statements they replace (an
index probe of ``door_flag`` and of ``visit`` per door), and row-level security applies as in the
caller's own query.

Revision ID: 0030_door_status
Revises: 0031_allocation_step_plan
"""

from alembic import op

from app.migration_helpers import APP_ROLE

revision = "0030_door_status"
down_revision = "0031_allocation_step_plan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION current_round(campaign uuid) RETURNS TABLE (id uuid, number integer)
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT r.id, r.number FROM canvass_round r
            WHERE r.campaign_id = campaign
            ORDER BY r.number DESC
            LIMIT 1
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION door_status(campaign uuid, door bigint) RETURNS TABLE (status text)
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT CASE
                WHEN EXISTS (SELECT 1 FROM door_flag f
                             WHERE f.campaign_id = campaign AND f.address_id = door)
                    THEN 'flagged'
                WHEN EXISTS (SELECT 1 FROM visit v
                             WHERE v.campaign_id = campaign AND v.address_id = door
                               AND v.round_id = (SELECT r.id FROM current_round(campaign) r))
                    THEN 'visited'
                ELSE 'pending'
            END
        $$
        """
    )
    for fn in ("current_round(uuid)", "door_status(uuid, bigint)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {APP_ROLE}")
    op.execute(
        "COMMENT ON FUNCTION current_round(uuid) IS "
        "'The campaign''s current canvassing round: the one with the highest number.'"
    )
    op.execute(
        "COMMENT ON FUNCTION door_status(uuid, bigint) IS "
        "'flagged (door_flag), else visited (a visit in the current round), else pending.'"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS door_status(uuid, bigint)")
    op.execute("DROP FUNCTION IF EXISTS current_round(uuid)")
