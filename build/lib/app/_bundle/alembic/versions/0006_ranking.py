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

from app.config import REPO_ROOT
from app.migration_helpers import APP_ROLE, campaign_table, reference_table

revision = "0006_ranking"
down_revision = "0005_supporters"
branch_labels = None
depends_on = None

SOURCE_TABLES = ("insee_tile", "address", "district")


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
    body = (REPO_ROOT / "app" / "sql" / "allocation.sql").read_text()
    op.execute(
        f"""
        CREATE FUNCTION porte_refresh_allocation() RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
        BEGIN
        {body}
        PERFORM porte_install_allocation_triggers();
        RETURN (SELECT version FROM allocation_state);
        END $fn$
        """
    )
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


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ranking_cache")
    op.execute("DROP TABLE IF EXISTS ranking_settings")
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_allocation()")
    op.execute("DROP FUNCTION IF EXISTS porte_install_allocation_triggers()")
    # CASCADE drops the statement triggers installed on insee_tile, address and district.
    op.execute("DROP FUNCTION IF EXISTS porte_mark_allocation_stale() CASCADE")
    for table in ("district_profile", "door_district", "district_alloc", "allocation_state"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
