"""Ranking weights, allocation of tiles to districts, ranking cache (issue 6).

Reference tables (written by the owner, read by the service):
- ``district_alloc``: tile -> district shares (dasymetric by doors, area share without doors);
- ``door_district``: each door's district;
- ``district_profile``: per-district sums of the allocated tile counts and doors;
- ``allocation_state``: one row, ``stale`` set by statement triggers on insee_tile, address and
  district, cleared by ``porte_refresh_allocation()`` (SECURITY DEFINER, so the service can refresh
  lazily; importers may call it at the end of their transaction).
Campaign tables (RLS): ``ranking_settings`` (weights, election, side, communes) and
``ranking_cache`` (one full ranking per preset/election/side, with the fingerprint of its inputs).

Revision ID: 0006_ranking
Revises: 0005_supporters
"""

from alembic import op

from app.migration_helpers import APP_ROLE, campaign_table, reference_table

revision = "0006_ranking"
down_revision = "0005_supporters"
branch_labels = None
depends_on = None

SOURCE_TABLES = ("insee_tile", "address", "district")

# Body of porte_refresh_allocation() as it was at this revision: a snapshot, because
# app/sql/allocation.sql is the live definition and later migrations replace the function.
ALLOCATION_BODY = """
-- Allocation of INSEE 200 m tiles to districts (body of porte_refresh_allocation(); plpgsql).
--
-- A tile straddling several districts gives each district the share of ITS doors that fall inside
-- it (dasymetric); a tile with no door gives each district its share of the tile's AREA. Shares of
-- one tile never add up to more than 1 (overlapping districts are normalised), so the mass of every
-- count is preserved: what a tile loses is only the part lying outside every district.
-- Doors go to one tile by grid arithmetic on their EPSG:3035 position (the id encodes the
-- lower-left corner) and to one district (the smallest code when polygons overlap).

PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_allocation'));

TRUNCATE door_district, district_alloc, district_profile;

-- Each door in exactly one district.
INSERT INTO door_district (address_id, district_code)
SELECT DISTINCT ON (a.id) a.id, d.code
FROM district d
JOIN address a ON ST_Intersects(d.geom, a.geom)
ORDER BY a.id, d.code;

-- Tile x district pairs: doors inside (from door positions) and area share (from geometry).
INSERT INTO district_alloc (district_code, tile_id, weight, method, tile_doors, doors, area_share)
WITH door_tile AS (
    SELECT a.id AS address_id,
           'CRS3035RES200mN' || (floor(ST_Y(p) / 200) * 200)::bigint
               || 'E' || (floor(ST_X(p) / 200) * 200)::bigint AS tile_id
    FROM (SELECT id, ST_Transform(geom, 3035) AS p FROM address WHERE geom IS NOT NULL) a
),
tile_doors AS (
    SELECT dt.tile_id, count(*)::int AS n
    FROM door_tile dt JOIN insee_tile t ON t.id = dt.tile_id
    GROUP BY dt.tile_id
),
pair_doors AS (
    SELECT dt.tile_id, dd.district_code, count(*)::int AS n
    FROM door_tile dt
    JOIN door_district dd USING (address_id)
    JOIN insee_tile t ON t.id = dt.tile_id
    GROUP BY dt.tile_id, dd.district_code
),
pair_area AS (
    -- Tiles are axis-aligned squares: clipping the district by the tile's box gives the same
    -- area as ST_Intersection, about four times faster.
    SELECT t.id AS tile_id, d.code AS district_code,
           ST_Area(ST_ClipByBox2D(d.geom_3035, t.geom)) AS a,
           ST_Area(t.geom) AS tile_area
    FROM insee_tile t
    JOIN district d ON t.geom && d.geom_3035
),
pair_area_share AS (
    -- Overlapping districts would count the overlap twice: divide by the larger of the tile's
    -- area and the sum of its pieces, so a tile never gives away more than itself.
    SELECT tile_id, district_code,
           a / greatest(tile_area, sum(a) OVER (PARTITION BY tile_id)) AS share
    FROM pair_area
    WHERE a > 0
),
pairs AS (
    SELECT coalesce(pa.tile_id, pd.tile_id) AS tile_id,
           coalesce(pa.district_code, pd.district_code) AS district_code,
           coalesce(pa.share, 0) AS area_share,
           coalesce(pd.n, 0) AS doors
    FROM pair_area_share pa
    FULL JOIN pair_doors pd USING (tile_id, district_code)
)
SELECT p.district_code, p.tile_id,
       CASE WHEN coalesce(td.n, 0) > 0 THEN p.doors::double precision / td.n
            ELSE p.area_share END,
       CASE WHEN coalesce(td.n, 0) > 0 THEN 'doors' ELSE 'area' END,
       coalesce(td.n, 0), p.doors, p.area_share
FROM pairs p
LEFT JOIN tile_doors td USING (tile_id)
WHERE (CASE WHEN coalesce(td.n, 0) > 0 THEN p.doors > 0 ELSE p.area_share > 0 END);

-- Per-district sums of the allocated tile counts, doors and imputed households.
INSERT INTO district_profile
SELECT d.code,
       sum(al.weight * t.ind), sum(al.weight * t.men), sum(al.weight * t.men_pauv),
       sum(al.weight * t.men_1ind), sum(al.weight * t.men_5ind), sum(al.weight * t.men_prop),
       sum(al.weight * t.men_fmp), sum(al.weight * t.ind_snv), sum(al.weight * t.log_soc),
       sum(al.weight * (coalesce(t.log_av45, 0) + coalesce(t.log_45_70, 0)
                        + coalesce(t.log_70_90, 0) + coalesce(t.log_ap90, 0)
                        + coalesce(t.log_inc, 0))),
       sum(al.weight * t.ind_18_24), sum(al.weight * t.ind_25_39), sum(al.weight * t.ind_40_54),
       sum(al.weight * t.ind_55_64), sum(al.weight * t.ind_65_79), sum(al.weight * t.ind_80p),
       coalesce(sum(al.weight * t.men) FILTER (WHERE t.i_est_200 = 1), 0),
       count(al.tile_id)::int,
       coalesce(dr.doors, 0), coalesce(dr.households, 0)
FROM district d
LEFT JOIN district_alloc al ON al.district_code = d.code
LEFT JOIN insee_tile t ON t.id = al.tile_id
LEFT JOIN (
    SELECT dd.district_code, count(*)::int AS doors, sum(a.households) AS households
    FROM door_district dd JOIN address a ON a.id = dd.address_id
    GROUP BY dd.district_code
) dr ON dr.district_code = d.code
GROUP BY d.code, dr.doors, dr.households;

UPDATE allocation_state SET
    stale = false,
    version = version + 1,
    refreshed_at = clock_timestamp(),
    tiles = (SELECT count(*) FROM insee_tile),
    doors = (SELECT count(*) FROM door_district),
    districts = (SELECT count(*) FROM district),
    pairs = (SELECT count(*) FROM district_alloc);
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE allocation_state (
            id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            stale boolean NOT NULL DEFAULT true,
            version bigint NOT NULL DEFAULT 0,
            refreshed_at timestamptz,
            tiles integer, doors integer, districts integer, pairs integer
        )
        """
    )
    op.execute("INSERT INTO allocation_state DEFAULT VALUES")
    op.execute(
        """
        CREATE TABLE district_alloc (
            district_code text NOT NULL,
            tile_id text NOT NULL,
            weight double precision NOT NULL CHECK (weight >= 0 AND weight <= 1.000001),
            method text NOT NULL CHECK (method IN ('doors', 'area')),
            tile_doors integer NOT NULL,
            doors integer NOT NULL,
            area_share double precision NOT NULL,
            PRIMARY KEY (district_code, tile_id)
        )
        """
    )
    op.execute("CREATE INDEX district_alloc_tile ON district_alloc (tile_id)")
    op.execute(
        """
        CREATE TABLE door_district (
            address_id bigint PRIMARY KEY,
            district_code text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX door_district_code ON door_district (district_code)")
    op.execute(
        """
        CREATE TABLE district_profile (
            district_code text PRIMARY KEY,
            ind double precision, men double precision, men_pauv double precision,
            men_1ind double precision, men_5ind double precision, men_prop double precision,
            men_fmp double precision, ind_snv double precision, log_soc double precision,
            log_total double precision,
            ind_18_24 double precision, ind_25_39 double precision, ind_40_54 double precision,
            ind_55_64 double precision, ind_65_79 double precision, ind_80p double precision,
            men_imputed double precision NOT NULL DEFAULT 0,
            tiles integer NOT NULL DEFAULT 0,
            doors integer NOT NULL DEFAULT 0,
            door_households double precision NOT NULL DEFAULT 0
        )
        """
    )
    for table in ("allocation_state", "district_alloc", "door_district", "district_profile"):
        reference_table(table)

    op.execute(
        """
        CREATE FUNCTION porte_mark_allocation_stale() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            UPDATE allocation_state SET stale = true WHERE NOT stale;
            RETURN NULL;
        END $fn$
        """
    )
    op.execute(
        """
        CREATE FUNCTION porte_install_allocation_triggers() RETURNS void
        LANGUAGE plpgsql AS $fn$
        DECLARE t text;
        BEGIN
            FOREACH t IN ARRAY ARRAY['insee_tile', 'address', 'district'] LOOP
                IF to_regclass(t) IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM pg_trigger
                    WHERE tgrelid = to_regclass(t) AND tgname = 'porte_allocation_stale'
                ) THEN
                    EXECUTE format(
                        'CREATE TRIGGER porte_allocation_stale '
                        'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                        'FOR EACH STATEMENT EXECUTE FUNCTION porte_mark_allocation_stale()', t);
                END IF;
            END LOOP;
        END $fn$
        """
    )
    create_refresh_function()
    op.execute("REVOKE ALL ON FUNCTION porte_refresh_allocation() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION porte_refresh_allocation() TO {APP_ROLE}")
    op.execute("SELECT porte_install_allocation_triggers()")

    op.execute(
        """
        CREATE TABLE ranking_settings (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            weights jsonb NOT NULL DEFAULT '{}'::jsonb,
            base_preset text,
            election_id integer,
            side text,
            communes text[],
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by uuid,
            PRIMARY KEY (campaign_id)
        )
        """
    )
    campaign_table("ranking_settings")
    op.execute(
        """
        CREATE TABLE ranking_cache (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            cache_key text NOT NULL,
            fingerprint text NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            result jsonb NOT NULL,
            PRIMARY KEY (campaign_id, cache_key)
        )
        """
    )
    campaign_table("ranking_cache")


def create_refresh_function() -> None:
    """``porte_refresh_allocation()`` as at this revision (0021's downgrade uses it too)."""
    op.execute(
        f"""
        CREATE FUNCTION porte_refresh_allocation() RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
        BEGIN
        {ALLOCATION_BODY}
        PERFORM porte_install_allocation_triggers();
        RETURN (SELECT version FROM allocation_state);
        END $fn$
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ranking_cache")
    op.execute("DROP TABLE IF EXISTS ranking_settings")
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_allocation()")
    op.execute("DROP FUNCTION IF EXISTS porte_install_allocation_triggers()")
    # CASCADE drops the statement triggers installed on insee_tile, address and district.
    op.execute("DROP FUNCTION IF EXISTS porte_mark_allocation_stale() CASCADE")
    for table in ("district_profile", "door_district", "district_alloc", "allocation_state"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
