"""Campaign territory: communes, a legislative constituency, a département or the whole country.

Reference tables (public data, written by the owner, read by the service):
- ``constituency`` (code ``92-13``, département, number, name, contour when the file had one),
  ``constituency_part`` (the polling stations or communes a constituency file lists);
- ``district_constituency``: each district's constituency, resolved by
  ``porte_refresh_constituencies()`` from, in this order, the file's polling-station list, the
  contour holding the district's point on surface, the commune (only when the commune lies in one
  constituency: Paris, Marseille... are split between several and need one of the other two);
- ``reference_state``: one row of counters bumped by statement triggers when districts,
  constituencies or election results change (what the territory and the ranking's precompute are
  checked against), and ``mapped``: the counters ``district_constituency`` was resolved for.

Campaign tables (RLS):
- ``campaign_territory`` (kind, codes, a version bumped at every refresh) replaces the ranking
  setting ``ranking_settings.communes`` (moved here, then dropped);
- ``campaign_district``: the districts of the territory, written only by
  ``porte_refresh_territory(campaign)`` (SECURITY DEFINER: the rule lives here, in one place).
  Ranking, district tiles, exports, OGC collections, progress and supporter aggregates join it.

``campaign_change.supporters`` counts committed transactions that changed a campaign's supporters
(deferred row trigger, once per transaction, like ``doors`` in 0009): the ranking's precompute
refreshes its supporter factor when it moves. ``campaign_change.turfs`` does the same for turfs
(created, archived): the visited doors analysts read, and the ranking's coverage with them, count
the doors of active turfs only (app/services/field/progress.py).

Revision ID: 0019_territory
Revises: 0030_door_status
"""

from alembic import op

from app.migration_helpers import APP_ROLE, reference_table, run_script

revision = "0019_territory"
down_revision = "0030_door_status"
branch_labels = None
depends_on = None

REFERENCE_TABLES = """
CREATE TABLE constituency (
    code text PRIMARY KEY CHECK (code ~ '^[0-9A-Z]{2,3}-[0-9]{2}$'),
    departement text NOT NULL,
    number smallint NOT NULL CHECK (number BETWEEN 1 AND 99),
    name text,
    geom geometry(MultiPolygon, 4326),
    source_file text,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX constituency_geom ON constituency USING gist (geom);
CREATE INDEX constituency_source ON constituency (source_file);
CREATE TABLE constituency_part (
    constituency_code text NOT NULL REFERENCES constituency(code) ON DELETE CASCADE,
    level text NOT NULL CHECK (level IN ('district', 'commune')),
    code text NOT NULL,
    PRIMARY KEY (constituency_code, level, code)
);
CREATE INDEX constituency_part_code ON constituency_part (level, code);
CREATE TABLE district_constituency (
    district_code text PRIMARY KEY,
    constituency_code text NOT NULL,
    method text NOT NULL CHECK (method IN ('district', 'contour', 'commune'))
);
CREATE INDEX district_constituency_code ON district_constituency (constituency_code);
CREATE TABLE reference_state (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    districts bigint NOT NULL DEFAULT 0,
    constituencies bigint NOT NULL DEFAULT 0,
    elections bigint NOT NULL DEFAULT 0,
    mapped text NOT NULL DEFAULT ''
);
INSERT INTO reference_state DEFAULT VALUES;
CREATE INDEX district_departement ON district (porte_departement(commune_code));
"""

DEPARTEMENT = """
CREATE FUNCTION porte_departement(commune_code text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- INSEE commune code -> département: 3 characters overseas (971..989), 2 otherwise (2A, 2B)
    SELECT CASE WHEN left(commune_code, 2) IN ('97', '98') THEN left(commune_code, 3)
                ELSE left(commune_code, 2) END
$$
"""

# Statement triggers: TG_ARGV[0] names the counter bumped.
REFERENCE_CHANGED = """
CREATE FUNCTION porte_reference_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('UPDATE reference_state SET %1$I = %1$I + 1', TG_ARGV[0]);
    RETURN NULL;
END $$
"""
COUNTED = {
    "district": "districts",
    "constituency": "constituencies",
    "constituency_part": "constituencies",
    "election": "elections",
    "election_result": "elections",
    "election_candidate_result": "elections",
}

REFRESH_CONSTITUENCIES = f"""
CREATE FUNCTION porte_refresh_constituencies() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    stamp text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_constituencies'));
    SELECT districts || ':' || constituencies INTO stamp FROM reference_state;
    IF stamp = (SELECT mapped FROM reference_state) THEN
        RETURN (SELECT count(*) FROM district_constituency);
    END IF;
    TRUNCATE district_constituency;
    INSERT INTO district_constituency (district_code, constituency_code, method)
    SELECT DISTINCT ON (d.code) d.code, x.constituency_code, x.method
    FROM district d
    CROSS JOIN LATERAL (
        SELECT p.constituency_code, 'district' AS method, 1 AS priority
        FROM constituency_part p WHERE p.level = 'district' AND p.code = d.code
        UNION ALL
        SELECT c.code, 'contour', 2
        FROM constituency c
        WHERE c.geom IS NOT NULL AND ST_Intersects(c.geom, ST_PointOnSurface(d.geom))
        UNION ALL
        SELECT p.constituency_code, 'commune', 3
        FROM constituency_part p
        WHERE p.level = 'commune' AND p.code = d.commune_code
          AND NOT EXISTS (SELECT 1 FROM constituency_part q WHERE q.level = 'commune'
                          AND q.code = p.code AND q.constituency_code <> p.constituency_code)
    ) x
    ORDER BY d.code, x.priority, x.constituency_code;
    UPDATE reference_state SET mapped = stamp;
    RETURN (SELECT count(*) FROM district_constituency);
END $$;
REVOKE ALL ON FUNCTION porte_refresh_constituencies() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porte_refresh_constituencies() TO {APP_ROLE};
"""

CAMPAIGN_TABLES = """
CREATE TABLE campaign_territory (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    kind text NOT NULL DEFAULT 'country'
        CHECK (kind IN ('country', 'departement', 'constituency', 'communes')),
    codes text[] NOT NULL DEFAULT '{}',
    version bigint NOT NULL DEFAULT 0,
    refreshed_for text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid,
    PRIMARY KEY (campaign_id),
    CHECK ((kind = 'country') = (cardinality(codes) = 0))
);
CREATE TABLE campaign_district (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    district_code text NOT NULL,
    PRIMARY KEY (campaign_id, district_code)
);
"""

# The territory rule, in one place. Callable by the service for its own campaign only (or by a
# role that bypasses row-level security: the owner, after imports).
REFRESH_TERRITORY = f"""
CREATE FUNCTION porte_refresh_territory(p_campaign uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t campaign_territory%ROWTYPE;
    stamp text;
    n integer;
BEGIN
    IF p_campaign IS DISTINCT FROM porte_current_campaign()
       AND NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = session_user) THEN
        RAISE EXCEPTION 'porte_refresh_territory: campaign % is not the current campaign',
            p_campaign USING ERRCODE = '42501';
    END IF;
    SELECT * INTO t FROM campaign_territory WHERE campaign_id = p_campaign FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT districts || ':' || constituencies INTO stamp FROM reference_state;
    DELETE FROM campaign_district WHERE campaign_id = p_campaign;
    INSERT INTO campaign_district (campaign_id, district_code)
    SELECT p_campaign, d.code
    FROM district d
    WHERE t.kind = 'country'
       OR (t.kind = 'communes' AND d.commune_code = ANY (t.codes))
       OR (t.kind = 'departement' AND porte_departement(d.commune_code) = ANY (t.codes))
       OR (t.kind = 'constituency' AND EXISTS (
               SELECT 1 FROM district_constituency dc
               WHERE dc.district_code = d.code AND dc.constituency_code = ANY (t.codes)));
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE campaign_territory SET version = version + 1, refreshed_for = stamp
    WHERE campaign_id = p_campaign;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION porte_refresh_territory(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porte_refresh_territory(uuid) TO {APP_ROLE};

CREATE FUNCTION porte_campaign_territory_created() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO campaign_territory (campaign_id, updated_by) VALUES (NEW.id, NEW.created_by)
    ON CONFLICT DO NOTHING;
    PERFORM porte_refresh_territory(NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_territory_row AFTER INSERT ON campaign
FOR EACH ROW EXECUTE FUNCTION porte_campaign_territory_created();
"""

SUPPORTERS_CHANGED = """
CREATE FUNCTION porte_supporters_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign_id ELSE NEW.campaign_id END;
BEGIN
    IF current_setting('porte.supporters_changed', true) IS DISTINCT FROM c::text THEN
        UPDATE campaign_change SET supporters = supporters + 1 WHERE campaign_id = c;
        PERFORM set_config('porte.supporters_changed', c::text, true);
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER supporter_changed
AFTER INSERT OR UPDATE OR DELETE ON supporter DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION porte_supporters_changed();
CREATE FUNCTION porte_supporters_changed_all() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE campaign_change SET supporters = supporters + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER supporter_truncated AFTER TRUNCATE ON supporter
FOR EACH STATEMENT EXECUTE FUNCTION porte_supporters_changed_all();
"""

TURFS_CHANGED = """
CREATE FUNCTION porte_turfs_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign_id ELSE NEW.campaign_id END;
BEGIN
    IF current_setting('porte.turfs_changed', true) IS DISTINCT FROM c::text THEN
        UPDATE campaign_change SET turfs = turfs + 1 WHERE campaign_id = c;
        PERFORM set_config('porte.turfs_changed', c::text, true);
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER turf_changed
AFTER INSERT OR UPDATE OR DELETE ON turf DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION porte_turfs_changed();
CREATE FUNCTION porte_turfs_changed_all() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE campaign_change SET turfs = turfs + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER turf_truncated AFTER TRUNCATE ON turf
FOR EACH STATEMENT EXECUTE FUNCTION porte_turfs_changed_all();
"""


def _campaign_rls(table: str, privileges: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY campaign_isolation ON {table} "
        "USING (campaign_id = porte_current_campaign()) "
        "WITH CHECK (campaign_id = porte_current_campaign())"
    )
    op.execute(f"GRANT {privileges} ON {table} TO {APP_ROLE}")


def upgrade() -> None:
    """Constituencies, reference counters, campaign territory; communes setting moved."""
    run_script(DEPARTEMENT)
    run_script(REFERENCE_TABLES)
    for table in ("constituency", "constituency_part", "district_constituency", "reference_state"):
        reference_table(table)
    run_script(REFERENCE_CHANGED)
    for table, counter in COUNTED.items():
        op.execute(
            f"CREATE TRIGGER {table}_reference_changed AFTER INSERT OR UPDATE OR DELETE OR "
            f"TRUNCATE ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION porte_reference_changed('{counter}')"
        )
    run_script(REFRESH_CONSTITUENCIES)

    run_script(CAMPAIGN_TABLES)
    _campaign_rls("campaign_territory", "SELECT, UPDATE")
    _campaign_rls("campaign_district", "SELECT")
    run_script(REFRESH_TERRITORY)
    # Existing campaigns: the ranking's communes setting becomes the territory, else the country.
    op.execute(
        "INSERT INTO campaign_territory (campaign_id, kind, codes, updated_by) "
        "SELECT c.id, CASE WHEN cardinality(s.communes) > 0 THEN 'communes' ELSE 'country' END, "
        "coalesce(CASE WHEN cardinality(s.communes) > 0 THEN s.communes END, '{}'), s.updated_by "
        "FROM campaign c LEFT JOIN ranking_settings s ON s.campaign_id = c.id"
    )
    op.execute("SELECT porte_refresh_territory(campaign_id) FROM campaign_territory")
    op.execute("ALTER TABLE ranking_settings DROP COLUMN communes")

    op.execute("ALTER TABLE campaign_change ADD COLUMN supporters bigint NOT NULL DEFAULT 0")
    run_script(SUPPORTERS_CHANGED)
    op.execute("ALTER TABLE campaign_change ADD COLUMN turfs bigint NOT NULL DEFAULT 0")
    run_script(TURFS_CHANGED)


def downgrade() -> None:
    """Back to the communes ranking setting; constituencies and territories dropped."""
    op.execute("DROP TRIGGER IF EXISTS turf_truncated ON turf")
    op.execute("DROP TRIGGER IF EXISTS turf_changed ON turf")
    op.execute("DROP FUNCTION IF EXISTS porte_turfs_changed_all()")
    op.execute("DROP FUNCTION IF EXISTS porte_turfs_changed()")
    op.execute("ALTER TABLE campaign_change DROP COLUMN IF EXISTS turfs")
    op.execute("DROP TRIGGER IF EXISTS supporter_truncated ON supporter")
    op.execute("DROP TRIGGER IF EXISTS supporter_changed ON supporter")
    op.execute("DROP FUNCTION IF EXISTS porte_supporters_changed_all()")
    op.execute("DROP FUNCTION IF EXISTS porte_supporters_changed()")
    op.execute("ALTER TABLE campaign_change DROP COLUMN IF EXISTS supporters")
    op.execute("ALTER TABLE ranking_settings ADD COLUMN communes text[]")
    op.execute(
        "UPDATE ranking_settings s SET communes = t.codes FROM campaign_territory t "
        "WHERE t.campaign_id = s.campaign_id AND t.kind = 'communes'"
    )
    op.execute("DROP TRIGGER IF EXISTS campaign_territory_row ON campaign")
    op.execute("DROP FUNCTION IF EXISTS porte_campaign_territory_created()")
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_territory(uuid)")
    op.execute("DROP TABLE IF EXISTS campaign_district")
    op.execute("DROP TABLE IF EXISTS campaign_territory")
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_constituencies()")
    for table in COUNTED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_reference_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS porte_reference_changed()")
    op.execute("DROP INDEX IF EXISTS district_departement")
    for table in ("reference_state", "district_constituency", "constituency_part", "constituency"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS porte_departement(text)")
