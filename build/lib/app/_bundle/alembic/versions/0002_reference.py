"""Reference data: INSEE tiles, doors (addresses), districts, election results (issue 3).

Public data shared by every campaign: the service role may only read it; the owner role loads it
with ``porte import`` (see app/services/imports/).

Revision ID: 0002_reference
Revises: 0001_base
"""

from alembic import op

from app.migration_helpers import grant_sequences, reference_table

revision = "0002_reference"
down_revision = "0001_base"
branch_labels = None
depends_on = None

TILE_COUNTS = [
    "ind", "men", "men_pauv", "men_1ind", "men_5ind", "men_prop", "men_fmp", "ind_snv",
    "men_surf", "men_coll", "men_mais", "log_av45", "log_45_70", "log_70_90", "log_ap90",
    "log_inc", "log_soc", "ind_0_3", "ind_4_5", "ind_6_10", "ind_11_17", "ind_18_24",
    "ind_25_39", "ind_40_54", "ind_55_64", "ind_65_79", "ind_80p", "ind_inc",
]  # fmt: skip


def upgrade() -> None:
    counts = ",\n            ".join(f"{c} double precision" for c in TILE_COUNTS)
    # INSEE Filosofi 200 m tiles; the square (EPSG:3035) is derived from the id.
    op.execute(
        f"""
        CREATE TABLE insee_tile (
            id text PRIMARY KEY,
            geom geometry(Polygon, 3035) NOT NULL,
            {counts},
            i_est_200 smallint,
            lcog_geo text,
            source_file text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX insee_tile_geom ON insee_tile USING gist (geom)")
    op.execute("CREATE INDEX insee_tile_source ON insee_tile (source_file)")

    # The doors. The point is a stored generated column so that COPY fills it with no second pass.
    # Keys are in the "C" collation: byte comparisons make their indexes cheaper to build.
    # (Doors by commune use the geocoder's index on (code_insee, nom_voie, numero), issue 5.)
    op.execute(
        """
        CREATE TABLE address (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ban_id text COLLATE "C" UNIQUE,
            numero integer,
            suffixe text,
            nom_voie text,
            code_postal text,
            code_insee text COLLATE "C",
            nom_commune text,
            lon double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
            lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
            geom geometry(Point, 4326)
                GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED,
            households real NOT NULL DEFAULT 1 CHECK (households > 0),
            source text COLLATE "C" NOT NULL CHECK (source IN ('ban', 'bal', 'synthetic')),
            source_file text COLLATE "C" NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX address_geom ON address USING gist (geom)")
    op.execute("CREATE INDEX address_source ON address (source_file)")
    # Cheap "are demo doors loaded?" for /health, and replacing them commune by commune.
    op.execute("CREATE INDEX address_synthetic ON address (code_insee) WHERE source = 'synthetic'")

    op.execute(
        """
        CREATE TABLE district (
            code text PRIMARY KEY,
            kind text NOT NULL DEFAULT 'bureau_de_vote' CHECK (kind IN ('bureau_de_vote', 'iris')),
            name text,
            commune_code text,
            commune_name text,
            geom geometry(MultiPolygon, 4326) NOT NULL,
            geom_3035 geometry(MultiPolygon, 3035) NOT NULL,
            source_file text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX district_geom ON district USING gist (geom)")
    op.execute("CREATE INDEX district_geom_3035 ON district USING gist (geom_3035)")
    op.execute("CREATE INDEX district_commune ON district (commune_code)")

    op.execute(
        """
        CREATE TABLE election (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            source_file text NOT NULL,
            loaded_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    # No foreign key to district: a station may have results but no contour (92019_0020).
    op.execute(
        """
        CREATE TABLE election_result (
            election_id integer NOT NULL REFERENCES election(id) ON DELETE CASCADE,
            district_code text NOT NULL,
            commune_code text,
            inscrits integer,
            votants integer,
            abstentions integer,
            exprimes integer,
            blancs integer,
            nuls integer,
            PRIMARY KEY (election_id, district_code)
        )
        """
    )
    op.execute("CREATE INDEX election_result_district ON election_result (district_code)")
    op.execute(
        """
        CREATE TABLE election_candidate_result (
            election_id integer NOT NULL REFERENCES election(id) ON DELETE CASCADE,
            district_code text NOT NULL,
            position integer NOT NULL,
            nuance text,
            label text,
            voix integer,
            PRIMARY KEY (election_id, district_code, position)
        )
        """
    )

    # One line per successful import (failed imports roll back and leave nothing).
    op.execute(
        """
        CREATE TABLE import_run (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind text NOT NULL,
            source_file text NOT NULL,
            source text,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            rows_read bigint NOT NULL,
            rows_loaded bigint NOT NULL,
            rows_skipped bigint NOT NULL DEFAULT 0,
            rows_rejected bigint NOT NULL DEFAULT 0,
            details jsonb
        )
        """
    )
    for table in (
        "insee_tile",
        "address",
        "district",
        "election",
        "election_result",
        "election_candidate_result",
        "import_run",
    ):
        reference_table(table)
    grant_sequences()


def downgrade() -> None:
    for table in (
        "import_run",
        "election_candidate_result",
        "election_result",
        "election",
        "district",
        "address",
        "insee_tile",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
