"""Ranking precomputed per campaign territory, and district shapes simplified per zoom.

The ranking is kept in three layers (app/services/ranking/snapshot.py, scoring.py), so that a
change of weights is one weighted sum and a sort, and a page or an explanation is an index read:

- ``ranking_snapshot``: what a ranking was asked with (election, side, swing reference, k) and
  resolved to, the versions of its inputs (allocation, elections, territory, doors, supporters),
  and per factor the mean, standard deviation and number of districts with a value;
- ``ranking_value``: per district of the territory, every factor's value and z-score (arrays in
  the snapshot's ``factor_names`` order), the coverage damping and the counts shown beside the
  score (counts below k are stored blank, with their ``*_suppressed`` flag, as the old cache did);
- ``ranking_scoring`` / ``ranking_score``: one weighted sum of the z-scores, ranked (rank is the
  key: pages are index range scans); ``ranking_commune_score``: the same per commune, for the
  district tiles at low zoom; ``ranking_default``: the scoring the district tiles draw (the
  campaign's saved weights and election, or the default preset).
``ranking_cache`` (a whole ranking as one JSON document per preset) is dropped.

Reference tables (owner): ``district_shape`` (each district in EPSG:3857 simplified for zooms
9-12), ``commune_shape`` (districts merged by commune, simplified for zooms 5-8) and
``map_tile_feature`` (both cut and encoded for every tile they touch at those zooms), refreshed by
``porte_refresh_district_shapes()`` for the districts whose geometry or names changed
(``district_shape_source`` keeps the hash each was built from).

Revision ID: 0020_ranking_precompute
Revises: 0019_territory
"""

from alembic import op

from app.migration_helpers import APP_ROLE, reference_table, run_script

revision = "0020_ranking_precompute"
down_revision = "0019_territory"
branch_labels = None
depends_on = None


RANKING = """
-- A z-score, 0 where the value is missing or the factor has no spread (the ranking's rule).
-- Plain SQL, immutable: inlined into the statements that use it, no call per district.
CREATE FUNCTION porte_z(x double precision, mean double precision, sd double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x IS NULL OR sd IS NULL OR sd = 0 THEN 0 ELSE (x - mean) / sd END
$$;
CREATE TABLE ranking_snapshot (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    request_key text NOT NULL,
    versions jsonb NOT NULL,
    inputs jsonb NOT NULL,
    factor_names text[] NOT NULL,
    mean double precision[],
    sd double precision[],
    n integer[],
    districts integer NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 0,
    refreshed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (campaign_id, id),
    UNIQUE (campaign_id, request_key)
);
CREATE TABLE ranking_value (
    campaign_id uuid NOT NULL,
    snapshot_id bigint NOT NULL,
    district_code text NOT NULL,
    commune_code text,
    v double precision[] NOT NULL,
    z double precision[] NOT NULL,
    damping double precision NOT NULL DEFAULT 1,
    swing_change double precision,
    population double precision,
    households double precision,
    poor_households double precision,
    social_dwellings double precision,
    doors integer,
    tiles integer,
    registered integer,
    abstentions integer,
    votes_cast integer,
    supporters integer,
    supporters_suppressed boolean NOT NULL DEFAULT false,
    visited_doors integer,
    visited_doors_suppressed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (campaign_id, snapshot_id, district_code),
    FOREIGN KEY (campaign_id, snapshot_id) REFERENCES ranking_snapshot (campaign_id, id)
        ON DELETE CASCADE
);
CREATE TABLE ranking_scoring (
    campaign_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    snapshot_id bigint NOT NULL,
    weights_key text NOT NULL,
    weights jsonb NOT NULL,
    snapshot_version bigint NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (campaign_id, id),
    UNIQUE (campaign_id, snapshot_id, weights_key),
    FOREIGN KEY (campaign_id, snapshot_id) REFERENCES ranking_snapshot (campaign_id, id)
        ON DELETE CASCADE
);
CREATE TABLE ranking_score (
    campaign_id uuid NOT NULL,
    scoring_id bigint NOT NULL,
    rank integer NOT NULL,
    district_code text NOT NULL,
    score double precision NOT NULL,
    PRIMARY KEY (campaign_id, scoring_id, rank),
    UNIQUE (campaign_id, scoring_id, district_code),
    FOREIGN KEY (campaign_id, scoring_id) REFERENCES ranking_scoring (campaign_id, id)
        ON DELETE CASCADE
);
CREATE TABLE ranking_commune_score (
    campaign_id uuid NOT NULL,
    scoring_id bigint NOT NULL,
    commune_code text NOT NULL,
    score double precision,
    best_rank integer,
    districts integer NOT NULL,
    doors integer,
    households double precision,
    supporters integer,
    visited_doors integer,
    PRIMARY KEY (campaign_id, scoring_id, commune_code),
    FOREIGN KEY (campaign_id, scoring_id) REFERENCES ranking_scoring (campaign_id, id)
        ON DELETE CASCADE
);
CREATE TABLE ranking_default (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    scoring_id bigint NOT NULL,
    snapshot_id bigint NOT NULL,
    set_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (campaign_id),
    FOREIGN KEY (campaign_id, scoring_id) REFERENCES ranking_scoring (campaign_id, id)
        ON DELETE CASCADE
);
"""
CAMPAIGN_TABLES = (
    "ranking_snapshot",
    "ranking_value",
    "ranking_scoring",
    "ranking_score",
    "ranking_commune_score",
    "ranking_default",
)

SHAPES = """
CREATE TABLE district_shape_source (
    district_code text PRIMARY KEY,
    commune_code text,
    geom_hash text NOT NULL
);
-- Each district (zooms 9-12) and merged commune (zooms 5-8) cut and encoded for every map tile it
-- touches (ST_AsMVTGeom, extent 4096, buffer 64: the service's defaults), with what the tile
-- shows of it: a district tile reads its features by key, no clipping at request time.
CREATE TABLE map_tile_feature (
    z smallint NOT NULL,
    x integer NOT NULL,
    y integer NOT NULL,
    code text NOT NULL,
    kind text NOT NULL,
    name text,
    commune_name text,
    geom geometry NOT NULL,
    PRIMARY KEY (z, x, y, code)
);
CREATE INDEX map_tile_feature_code ON map_tile_feature (code);
CREATE TABLE district_shape (
    district_code text NOT NULL,
    level smallint NOT NULL,
    geom geometry(Geometry, 3857) NOT NULL,
    PRIMARY KEY (district_code, level)
);
CREATE TABLE commune_shape (
    commune_code text NOT NULL,
    level smallint NOT NULL,
    commune_name text,
    geom geometry(Geometry, 3857) NOT NULL,
    PRIMARY KEY (commune_code, level)
);
"""

# The map tiles (z, x, y) a web-mercator geometry touches (with the 64/4096 buffer), and the
# geometry cut and encoded for each (ST_AsMVTGeom, extent 4096, buffer 64).
TILE_CUTS = """
CREATE FUNCTION porte_tile_cuts(g geometry, z integer)
RETURNS TABLE (x integer, y integer, g geometry)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tx, ty, cut
    FROM (SELECT 40075016.68557849 / 2 ^ z AS size, 20037508.342789244 AS o) k
    CROSS JOIN LATERAL generate_series(
        floor((ST_XMin(g) + k.o) / k.size - 1.0 / 64)::int,
        floor((ST_XMax(g) + k.o) / k.size + 1.0 / 64)::int) tx
    CROSS JOIN LATERAL generate_series(
        floor((k.o - ST_YMax(g)) / k.size - 1.0 / 64)::int,
        floor((k.o - ST_YMin(g)) / k.size + 1.0 / 64)::int) ty
    CROSS JOIN LATERAL (SELECT ST_AsMVTGeom(g, ST_TileEnvelope(z, tx, ty), 4096, 64, true)
                        AS cut) m
    WHERE m.cut IS NOT NULL AND tx >= 0 AND ty >= 0 AND tx < 2 ^ z AND ty < 2 ^ z
$$
"""

# Half a screen pixel (256-pixel tiles) at each zoom, in web-mercator metres.
REFRESH_SHAPES = """
CREATE FUNCTION porte_refresh_district_shapes() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_district_shapes'));
    DROP TABLE IF EXISTS shape_now, shape_changed, commune_changed;
    CREATE TEMP TABLE shape_now ON COMMIT DROP AS
    SELECT code AS district_code, commune_code,
           md5(ST_AsEWKB(geom) || convert_to(concat_ws('|', kind, name, commune_name), 'UTF8'))
               AS geom_hash
    FROM district;
    CREATE TEMP TABLE shape_changed ON COMMIT DROP AS
    SELECT coalesce(n.district_code, o.district_code) AS district_code,
           n.commune_code AS new_commune, o.commune_code AS old_commune
    FROM shape_now n
    FULL JOIN district_shape_source o USING (district_code)
    WHERE n.geom_hash IS DISTINCT FROM o.geom_hash
       OR n.commune_code IS DISTINCT FROM o.commune_code;
    SELECT count(*) INTO changed FROM shape_changed;
    UPDATE reference_state SET shaped = districts;
    IF changed = 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM district_shape s USING shape_changed c WHERE s.district_code = c.district_code;
    INSERT INTO district_shape (district_code, level, geom)
    SELECT d.code, l.level,
           ST_SimplifyPreserveTopology(ST_Transform(d.geom, 3857),
                                       78271.517 / 2 ^ l.level)
    FROM district d
    JOIN shape_changed c ON c.district_code = d.code
    CROSS JOIN (VALUES (9), (10), (11), (12)) l(level);
    DELETE FROM map_tile_feature f USING shape_changed c
    WHERE f.z BETWEEN 9 AND 12 AND f.code = c.district_code;
    INSERT INTO map_tile_feature (z, x, y, code, kind, name, commune_name, geom)
    SELECT s.level, t.x, t.y, d.code, d.kind, d.name, d.commune_name, t.g
    FROM district_shape s
    JOIN shape_changed c ON c.district_code = s.district_code
    JOIN district d ON d.code = s.district_code
    CROSS JOIN LATERAL porte_tile_cuts(s.geom, s.level) t;
    DELETE FROM district_shape_source s USING shape_changed c
    WHERE s.district_code = c.district_code;
    INSERT INTO district_shape_source SELECT n.* FROM shape_now n
    JOIN shape_changed c USING (district_code);
    -- Communes whose districts changed: merged again, then simplified per zoom.
    CREATE TEMP TABLE commune_changed ON COMMIT DROP AS
    SELECT new_commune AS commune_code FROM shape_changed WHERE new_commune IS NOT NULL
    UNION SELECT old_commune FROM shape_changed WHERE old_commune IS NOT NULL;
    DELETE FROM commune_shape s USING commune_changed c WHERE s.commune_code = c.commune_code;
    INSERT INTO commune_shape (commune_code, level, commune_name, geom)
    SELECT m.commune_code, l.level, m.commune_name,
           ST_SimplifyPreserveTopology(m.geom, 78271.517 / 2 ^ l.level)
    FROM (
        SELECT d.commune_code, min(d.commune_name) AS commune_name,
               ST_UnaryUnion(ST_Collect(ST_Transform(d.geom, 3857))) AS geom
        FROM district d JOIN commune_changed c USING (commune_code)
        GROUP BY d.commune_code
    ) m
    CROSS JOIN (VALUES (5), (6), (7), (8)) l(level)
    WHERE m.geom IS NOT NULL;
    DELETE FROM commune_shape WHERE ST_IsEmpty(geom);
    DELETE FROM map_tile_feature f USING commune_changed c
    WHERE f.z BETWEEN 5 AND 8 AND f.code = c.commune_code;
    INSERT INTO map_tile_feature (z, x, y, code, kind, name, commune_name, geom)
    SELECT s.level, t.x, t.y, s.commune_code, 'commune', s.commune_name, s.commune_name, t.g
    FROM commune_shape s
    JOIN commune_changed c ON c.commune_code = s.commune_code
    CROSS JOIN LATERAL porte_tile_cuts(s.geom, s.level) t;
    RETURN changed;
END $$
"""


def upgrade() -> None:
    """Precomputed ranking tables (RLS) and district/commune shapes per zoom."""
    op.execute("DROP TABLE IF EXISTS ranking_cache")
    run_script(RANKING)
    for table in CAMPAIGN_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY campaign_isolation ON {table} "
            "USING (campaign_id = porte_current_campaign()) "
            "WITH CHECK (campaign_id = porte_current_campaign())"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute(
        "CREATE INDEX ranking_scoring_snapshot ON ranking_scoring (campaign_id, snapshot_id)"
    )

    run_script(SHAPES)
    # The district counter the shapes were built for: until they are rebuilt after a change of
    # districts, the tiles are cut at request time (correct, slower).
    op.execute("ALTER TABLE reference_state ADD COLUMN shaped bigint NOT NULL DEFAULT -1")
    # District tiles find districts with district.geom's index, then their shape by key; commune
    # tiles search the shapes (every level in one index: a partial index per level would not
    # serve the tile statement's generic plan, where the level is a parameter).
    op.execute("CREATE INDEX commune_shape_geom ON commune_shape USING gist (geom)")
    for table in ("district_shape_source", "district_shape", "commune_shape", "map_tile_feature"):
        reference_table(table)
    op.execute(TILE_CUTS)
    op.execute(REFRESH_SHAPES)
    op.execute("REVOKE ALL ON FUNCTION porte_refresh_district_shapes() FROM PUBLIC")
    op.execute("SELECT porte_refresh_district_shapes()")


def downgrade() -> None:
    """Back to the one-document ranking cache (empty: rankings are recomputed on demand)."""
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_district_shapes()")
    op.execute("DROP FUNCTION IF EXISTS porte_tile_cuts(geometry, integer)")
    op.execute("ALTER TABLE reference_state DROP COLUMN IF EXISTS shaped")
    for table in ("map_tile_feature", "commune_shape", "district_shape", "district_shape_source"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for table in reversed(CAMPAIGN_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS porte_z(float8, float8, float8)")
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
    op.execute("ALTER TABLE ranking_cache ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE ranking_cache FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY campaign_isolation ON ranking_cache "
        "USING (campaign_id = porte_current_campaign()) "
        "WITH CHECK (campaign_id = porte_current_campaign())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ranking_cache TO {APP_ROLE}")
