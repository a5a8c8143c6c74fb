"""Door-status versions and the one-call campaign entry (issue 8: the door tiles' hot path).

``campaign_change.doors`` counts the committed transactions that changed what a campaign's door
layer shows: a visit, a do-not-knock flag, a new round (every status resets), the address table
(public imports, for every campaign). The door-tile cache (``app/services/tile_cache.py``) keys
its tiles on it, so a cached tile is served only while nothing it shows has changed.

Why a counter row and not LISTEN/NOTIFY: the count is read in the same round trip as the caller's
standing, so an organiser who records a visit and reloads the map sees it at once (notifications
arrive later, on another connection). The row is bumped by *deferred* triggers, at commit, once
per transaction and campaign: the row lock is taken last, when the transaction holds every other
lock it will ever take, so it cannot be part of a deadlock; concurrent writers queue on it only
for their commit.

``porte_enter(campaign, user, invite)`` sets the transaction's tenant (the same settings as
``app.db.set_tenant``) and returns the caller's standing in the campaign (role, the invite's
assignment, campaign settings, the door version) in one call: one round trip instead of two for
every campaign request.

Revision ID: 0009_door_versions
Revises: 0008_swing
"""

from alembic import op

from app.migration_helpers import APP_ROLE

revision = "0009_door_versions"
down_revision = "0008_swing"
branch_labels = None
depends_on = None

TABLE = """
CREATE TABLE campaign_change (
    campaign_id uuid PRIMARY KEY REFERENCES campaign(id) ON DELETE CASCADE,
    doors bigint NOT NULL DEFAULT 0
)
"""

# Trigger functions run as the schema owner (SECURITY DEFINER): the service role may read the
# counters of its campaign but never write them.
FUNCTIONS = [
    """
    CREATE FUNCTION porte_campaign_created() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        INSERT INTO campaign_change (campaign_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    # Row trigger, deferred to commit; the transaction-local marker skips the rows after the
    # first one of the same campaign (a batch of 500 visits bumps once).
    """
    CREATE FUNCTION porte_doors_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        c uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign_id ELSE NEW.campaign_id END;
    BEGIN
        IF current_setting('porte.doors_changed', true) IS DISTINCT FROM c::text THEN
            UPDATE campaign_change SET doors = doors + 1 WHERE campaign_id = c;
            PERFORM set_config('porte.doors_changed', c::text, true);
        END IF;
        RETURN NULL;
    END $$
    """,
    # Statement trigger: changes to the public addresses, or a TRUNCATE, concern every campaign.
    """
    CREATE FUNCTION porte_doors_changed_all() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        UPDATE campaign_change SET doors = doors + 1;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION porte_enter(p_campaign uuid, p_user uuid, p_invite uuid)
    RETURNS TABLE (role text, assignment_id uuid, k_threshold integer, election_date date,
                   require_2fa boolean, doors_version bigint)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    BEGIN
        -- The tenant for the rest of the transaction (row-level security reads these).
        PERFORM set_config('porte.campaign_id', p_campaign::text, true),
                set_config('porte.user_id', coalesce(p_user::text, ''), true);
        IF p_invite IS NOT NULL THEN
            RETURN QUERY
            SELECT 'volunteer'::text, i.assignment_id, c.k_threshold, c.election_date,
                   c.require_2fa, coalesce(ch.doors, 0)
            FROM invite i
            JOIN campaign c ON c.id = i.campaign_id
            LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
            WHERE i.campaign_id = p_campaign AND i.id = p_invite
              AND i.revoked_at IS NULL AND i.expires_at > now();
        ELSE
            RETURN QUERY
            SELECT m.role, NULL::uuid, c.k_threshold, c.election_date, c.require_2fa,
                   coalesce(ch.doors, 0)
            FROM membership m
            JOIN app_user u ON u.id = m.user_id
            JOIN campaign c ON c.id = m.campaign_id
            LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
            WHERE m.campaign_id = p_campaign AND m.user_id = p_user AND u.is_active;
        END IF;
    END $$
    """,
]

ROW_TABLES = ("visit", "door_flag", "canvass_round")


def upgrade() -> None:
    """Counter table, its triggers, and porte_enter()."""
    op.execute(TABLE)
    op.execute("ALTER TABLE campaign_change ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE campaign_change FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY campaign_isolation ON campaign_change "
        "USING (campaign_id = porte_current_campaign())"
    )
    op.execute(f"GRANT SELECT ON campaign_change TO {APP_ROLE}")
    op.execute("INSERT INTO campaign_change (campaign_id) SELECT id FROM campaign")
    for sql in FUNCTIONS:
        op.execute(sql)
    op.execute(
        "CREATE TRIGGER campaign_change_row AFTER INSERT ON campaign "
        "FOR EACH ROW EXECUTE FUNCTION porte_campaign_created()"
    )
    for table in ROW_TABLES:
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_doors_changed "
            f"AFTER INSERT OR UPDATE OR DELETE ON {table} DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION porte_doors_changed()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_doors_truncated AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION porte_doors_changed_all()"
        )
    op.execute(
        "CREATE TRIGGER address_doors_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON address FOR EACH STATEMENT EXECUTE FUNCTION porte_doors_changed_all()"
    )


def downgrade() -> None:
    """Drop the triggers, functions and counter table."""
    op.execute("DROP TRIGGER IF EXISTS address_doors_changed ON address")
    for table in ROW_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_doors_truncated ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_doors_changed ON {table}")
    op.execute("DROP TRIGGER IF EXISTS campaign_change_row ON campaign")
    op.execute("DROP FUNCTION IF EXISTS porte_enter(uuid, uuid, uuid)")
    op.execute("DROP FUNCTION IF EXISTS porte_doors_changed_all()")
    op.execute("DROP FUNCTION IF EXISTS porte_doors_changed()")
    op.execute("DROP FUNCTION IF EXISTS porte_campaign_created()")
    op.execute("DROP TABLE IF EXISTS campaign_change")
