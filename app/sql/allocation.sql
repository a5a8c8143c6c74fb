-- Allocation of INSEE 200 m tiles to districts, incremental and resumable.
--
-- A tile straddling several districts gives each district the share of ITS doors that fall inside
-- it (dasymetric); a tile with no door gives each district its share of the tile's AREA. Shares of
-- one tile never add up to more than 1 (overlapping districts are normalised), so the mass of every
-- count is preserved: what a tile loses is only the part lying outside every district.
-- Doors go to one tile by grid arithmetic on their EPSG:3035 position (the id encodes the
-- lower-left corner) and to one district (the smallest code when polygons overlap).
--
-- Everything a tile's shares depend on lies inside the tile's square (its doors, the districts
-- crossing it), so the work is cut into BLOCKS of 10 km x 10 km (EPSG:3035, 50 x 50 tiles): a
-- block's door_district and district_alloc rows are rebuilt from the block alone. Statement
-- triggers on address, insee_tile and district queue the blocks a change touches
-- (allocation_dirty) and the districts whose profile must be summed again
-- (allocation_dirty_district); a TRUNCATE asks for a full rebuild (allocation_state.full_pending).
-- porte_allocation_step(n) rebuilds up to n queued blocks in the caller's transaction;
-- porte_allocation_finish() sums the queued districts' profiles and publishes a new version. A
-- driver committing after each step (`porte allocation refresh`) can be killed at any point: the
-- queue holds exactly what is left, so the next run continues, and nothing is counted twice.
--
-- This file is executed by migration 0021 (a snapshot of it lives there); a test checks that the
-- functions below are exactly those of the migrated database.

-- The block holding an EPSG:3035 position (metres): row-major key, both indexes are < 100,000.
CREATE OR REPLACE FUNCTION porte_alloc_block(x double precision, y double precision)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT floor(y / 10000)::bigint * 100000 + floor(x / 10000)::bigint
$fn$;

-- A block's square (EPSG:3035).
CREATE OR REPLACE FUNCTION porte_alloc_block_box(block bigint)
RETURNS geometry LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT ST_MakeEnvelope((block % 100000) * 10000.0, (block / 100000) * 10000.0,
                           (block % 100000 + 1) * 10000.0, (block / 100000 + 1) * 10000.0, 3035)
$fn$;

-- A WGS84 box holding a block's square (its edges are curves there: densify, then a margin),
-- for the index on address.geom; the exact test is done on the projected point.
CREATE OR REPLACE FUNCTION porte_alloc_block_lonlat_box(block bigint)
RETURNS geometry LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT ST_Expand(ST_Envelope(ST_Transform(ST_Segmentize(porte_alloc_block_box(block), 500),
                                              4326)), 0.0005)
$fn$;

-- The blocks a geometry's bounding box (EPSG:3035) touches.
CREATE OR REPLACE FUNCTION porte_alloc_blocks_of(g geometry)
RETURNS SETOF bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT by * 100000 + bx
    FROM generate_series(floor(ST_YMin(g) / 10000)::bigint, floor(ST_YMax(g) / 10000)::bigint) by,
         generate_series(floor(ST_XMin(g) / 10000)::bigint, floor(ST_XMax(g) / 10000)::bigint) bx
$fn$;

-- Queue blocks (in key order, so that concurrent writers lock them in the same order). An
-- existing entry is updated rather than skipped: if a refresh holds it, this waits until the
-- refresh commits, then queues the block again, so no change is ever lost.
CREATE OR REPLACE FUNCTION porte_alloc_mark(blocks bigint[])
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF cardinality(blocks) > 0 THEN
        INSERT INTO allocation_dirty AS q (block)
        SELECT DISTINCT b FROM unnest(blocks) AS b WHERE b IS NOT NULL ORDER BY 1
        ON CONFLICT (block) DO UPDATE SET marked_at = clock_timestamp();
        UPDATE allocation_state SET stale = true WHERE NOT stale;
    END IF;
END $fn$;

-- Trigger (statement level, transition tables): doors added, removed, moved or re-weighted.
-- Changed doors are grouped by WGS84 cells of 0.01 degree first, so that a load of millions of
-- doors projects thousands of cells, not every door; a cell queues the blocks its projected
-- bounding box touches (a superset). ST_Transform is called in the query itself, not in a
-- helper function, so that its projection is set up once per statement, not once per cell.
CREATE OR REPLACE FUNCTION porte_alloc_doors_changed()
RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    moved bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT b
            FROM (SELECT DISTINCT floor(lon * 100) AS i, floor(lat * 100) AS j
                  FROM alloc_new) c,
                 porte_alloc_blocks_of(ST_Transform(ST_MakeEnvelope(
                     c.i / 100, c.j / 100, (c.i + 1) / 100, (c.j + 1) / 100, 4326), 3035)) b));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT b
            FROM (SELECT DISTINCT floor(lon * 100) AS i, floor(lat * 100) AS j
                  FROM alloc_old) c,
                 porte_alloc_blocks_of(ST_Transform(ST_MakeEnvelope(
                     c.i / 100, c.j / 100, (c.i + 1) / 100, (c.j + 1) / 100, 4326), 3035)) b));
    ELSE
        moved := ARRAY(
            SELECT o.id FROM alloc_old o JOIN alloc_new n USING (id)
            WHERE (o.lon, o.lat, o.households) IS DISTINCT FROM (n.lon, n.lat, n.households));
        IF cardinality(moved) > 0 THEN
            PERFORM porte_alloc_mark(ARRAY(
                SELECT b
                FROM (SELECT floor(o.lon * 100) AS i, floor(o.lat * 100) AS j
                      FROM alloc_old o JOIN unnest(moved) AS m(id) USING (id)
                      UNION
                      SELECT floor(n.lon * 100), floor(n.lat * 100)
                      FROM alloc_new n JOIN unnest(moved) AS m(id) USING (id)) c,
                     porte_alloc_blocks_of(ST_Transform(ST_MakeEnvelope(
                         c.i / 100, c.j / 100, (c.i + 1) / 100, (c.j + 1) / 100, 4326),
                         3035)) b));
            -- A door moved to another block may be rebuilt there before its old block: its
            -- old district is queued now, while door_district still names it.
            INSERT INTO allocation_dirty_district (district_code)
            SELECT DISTINCT dd.district_code
            FROM door_district dd JOIN unnest(moved) AS m(id) ON dd.address_id = m.id
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN NULL;
END $fn$;

-- Trigger: tiles added, removed or changed (a tile lies in the block of its lower-left corner).
CREATE OR REPLACE FUNCTION porte_alloc_tiles_changed()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT DISTINCT porte_alloc_block(ST_XMin(geom), ST_YMin(geom)) FROM alloc_new));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT DISTINCT porte_alloc_block(ST_XMin(geom), ST_YMin(geom)) FROM alloc_old));
    ELSE
        PERFORM porte_alloc_mark(ARRAY(
            SELECT DISTINCT porte_alloc_block(ST_XMin(x.geom), ST_YMin(x.geom))
            FROM alloc_old o JOIN alloc_new n USING (id)
            CROSS JOIN LATERAL (VALUES (o.geom), (n.geom)) AS x(geom)
            WHERE o IS DISTINCT FROM n));
    END IF;
    RETURN NULL;
END $fn$;

-- Trigger: districts added, removed or reshaped: the blocks of their old and new bounding boxes,
-- and their profiles.
CREATE OR REPLACE FUNCTION porte_alloc_districts_changed()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT DISTINCT porte_alloc_blocks_of(geom_3035) FROM alloc_new));
        INSERT INTO allocation_dirty_district (district_code)
        SELECT DISTINCT code FROM alloc_new ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM porte_alloc_mark(ARRAY(
            SELECT DISTINCT porte_alloc_blocks_of(geom_3035) FROM alloc_old));
        INSERT INTO allocation_dirty_district (district_code)
        SELECT DISTINCT code FROM alloc_old ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $fn$;

-- Trigger: a source table was truncated: rebuild everything.
CREATE OR REPLACE FUNCTION porte_alloc_truncated()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE allocation_state SET full_pending = true, stale = true;
    RETURN NULL;
END $fn$;

-- Fresh statistics before a run: a bulk load leaves the planner blind (a step then takes
-- seconds instead of milliseconds). Only tables never analysed or much changed since.
CREATE OR REPLACE FUNCTION porte_allocation_analyze()
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.relname IN ('address', 'insee_tile', 'district', 'door_district',
                            'district_alloc')
          AND (c.reltuples < 0
               OR coalesce(s.n_mod_since_analyze, 0) > 0.2 * greatest(c.reltuples, 1000))
    LOOP
        EXECUTE format('ANALYZE %I', t);
    END LOOP;
END $fn$;

-- A full rebuild was asked for: empty the results and queue every block a district touches.
CREATE OR REPLACE FUNCTION porte_allocation_begin_full()
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_allocation'));
    IF NOT (SELECT full_pending FROM allocation_state) THEN
        RETURN;
    END IF;
    TRUNCATE door_district, district_alloc, district_profile, allocation_dirty_district;
    INSERT INTO allocation_dirty (block)
    SELECT DISTINCT porte_alloc_blocks_of(geom_3035) FROM district ORDER BY 1
    ON CONFLICT (block) DO NOTHING;
    INSERT INTO allocation_dirty_district (district_code) SELECT code FROM district;
    UPDATE allocation_state SET full_pending = false, stale = true,
        run_started_at = clock_timestamp(), run_blocks_done = 0;
END $fn$;

-- Rebuild up to max_blocks queued blocks (the caller commits); the blocks done and the blocks
-- still queued. Blocks queued by a transaction still running are left for a later step.
CREATE OR REPLACE FUNCTION porte_allocation_step(max_blocks integer)
RETURNS TABLE (done integer, remaining bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    batch bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_allocation'));
    IF (SELECT run_started_at IS NULL FROM allocation_state) THEN
        PERFORM porte_allocation_analyze();
    END IF;
    IF (SELECT full_pending FROM allocation_state) THEN
        PERFORM porte_allocation_begin_full();
    END IF;
    batch := ARRAY(SELECT block FROM allocation_dirty ORDER BY block LIMIT max_blocks
                   FOR UPDATE SKIP LOCKED);
    IF cardinality(batch) > 0 THEN
        UPDATE allocation_state SET run_started_at = coalesce(run_started_at, clock_timestamp());

        -- What the blocks held before: their districts' profiles must be summed again.
        WITH gone_doors AS (
            DELETE FROM door_district WHERE block = ANY(batch) RETURNING district_code
        ), gone_pairs AS (
            DELETE FROM district_alloc WHERE block = ANY(batch) RETURNING district_code
        )
        INSERT INTO allocation_dirty_district (district_code)
        SELECT district_code FROM gone_doors UNION SELECT district_code FROM gone_pairs
        ON CONFLICT DO NOTHING;

        -- The doors of the blocks that some district may hold, with their tile (grid
        -- arithmetic); then their district. The two are separate statements joined through an
        -- index on the temporary table: in one statement the planner, estimating a handful of
        -- doors per block, joined the districts' doors to the blocks' doors by a nested loop
        -- over a sorted list (35,000 x 16,000 comparisons: minutes for two blocks of a few
        -- tens of thousands of doors).
        IF to_regclass('pg_temp.porte_alloc_door') IS NULL THEN
            CREATE TEMP TABLE porte_alloc_door (
                address_id bigint PRIMARY KEY, block bigint, tile_id text, households real,
                district_code text
            ) ON COMMIT DROP;
        END IF;
        TRUNCATE porte_alloc_door;
        INSERT INTO porte_alloc_door (address_id, block, tile_id, households)
        SELECT a.id, b.block,
               'CRS3035RES200mN' || (floor(ST_Y(p) / 200) * 200)::bigint
                   || 'E' || (floor(ST_X(p) / 200) * 200)::bigint,
               a.households
        FROM unnest(batch) AS b(block)
        JOIN address a ON a.geom && porte_alloc_block_lonlat_box(b.block)
        CROSS JOIN LATERAL ST_Transform(a.geom, 3035) AS p
        WHERE porte_alloc_block(ST_X(p), ST_Y(p)) = b.block
          AND EXISTS (SELECT 1 FROM district d
                      WHERE d.geom_3035 && porte_alloc_block_box(b.block));
        ANALYZE porte_alloc_door;

        -- Districts are walked one by one, each finding its doors through the index on
        -- address.geom, so that each polygon is prepared once for all its doors; a door in
        -- several (overlapping) districts goes to the smallest code.
        UPDATE porte_alloc_door t SET district_code = i.code
        FROM (
            SELECT DISTINCT ON (a.id) a.id, d.code
            FROM (SELECT DISTINCT d.code
                  FROM unnest(batch) AS b(block)
                  JOIN district d ON d.geom_3035 && porte_alloc_block_box(b.block)) bd
            JOIN district d USING (code)
            JOIN address a ON ST_Intersects(d.geom, a.geom)
            ORDER BY a.id, d.code
        ) i
        WHERE t.address_id = i.id;

        WITH added AS (
            INSERT INTO door_district (address_id, district_code, block, households)
            SELECT address_id, district_code, block, households
            FROM porte_alloc_door WHERE district_code IS NOT NULL
            ON CONFLICT (address_id) DO UPDATE SET district_code = excluded.district_code,
                block = excluded.block, households = excluded.households
            RETURNING district_code
        )
        INSERT INTO allocation_dirty_district (district_code)
        SELECT DISTINCT district_code FROM added ON CONFLICT DO NOTHING;

        -- Tile x district pairs: doors inside (from door positions) and area share (geometry).
        WITH tiles AS (
            SELECT t.id AS tile_id, t.geom, b.block
            FROM unnest(batch) AS b(block)
            JOIN insee_tile t ON t.geom && porte_alloc_block_box(b.block)
            WHERE porte_alloc_block(ST_XMin(t.geom), ST_YMin(t.geom)) = b.block
        ),
        tile_doors AS (
            SELECT dt.tile_id, count(*)::int AS n FROM porte_alloc_door dt GROUP BY dt.tile_id
        ),
        pair_doors AS (
            SELECT dt.tile_id, dt.district_code, count(*)::int AS n
            FROM porte_alloc_door dt
            WHERE dt.district_code IS NOT NULL
            GROUP BY dt.tile_id, dt.district_code
        ),
        pair_area AS (
            -- Tiles are axis-aligned squares: clipping the district by the tile's box gives the
            -- same area as ST_Intersection, about four times faster.
            SELECT t.tile_id, d.code AS district_code,
                   ST_Area(ST_ClipByBox2D(d.geom_3035, t.geom)) AS a,
                   ST_Area(t.geom) AS tile_area
            FROM tiles t
            JOIN district d ON t.geom && d.geom_3035
        ),
        pair_area_share AS (
            -- Overlapping districts would count the overlap twice: divide by the larger of the
            -- tile's area and the sum of its pieces, so a tile never gives away more than itself.
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
        ),
        added AS (
            INSERT INTO district_alloc (district_code, tile_id, weight, method, tile_doors, doors,
                                        area_share, block)
            SELECT p.district_code, p.tile_id,
                   CASE WHEN coalesce(td.n, 0) > 0 THEN p.doors::double precision / td.n
                        ELSE p.area_share END,
                   CASE WHEN coalesce(td.n, 0) > 0 THEN 'doors' ELSE 'area' END,
                   coalesce(td.n, 0), p.doors, p.area_share, t.block
            FROM pairs p
            JOIN tiles t USING (tile_id)
            LEFT JOIN tile_doors td USING (tile_id)
            WHERE (CASE WHEN coalesce(td.n, 0) > 0 THEN p.doors > 0 ELSE p.area_share > 0 END)
            RETURNING district_code
        )
        INSERT INTO allocation_dirty_district (district_code)
        SELECT DISTINCT district_code FROM added ON CONFLICT DO NOTHING;

        DELETE FROM allocation_dirty WHERE block = ANY(batch);
        UPDATE allocation_state SET run_blocks_done = run_blocks_done + cardinality(batch);
    END IF;
    RETURN QUERY SELECT cardinality(batch), (SELECT count(*) FROM allocation_dirty);
END $fn$;

-- Sum the queued districts' profiles; publish a new version when anything was rebuilt. The
-- allocation is fresh again when no block is left in the queue.
CREATE OR REPLACE FUNCTION porte_allocation_finish()
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    codes text[];
    next_version bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('porte_refresh_allocation'));
    codes := ARRAY(SELECT district_code FROM allocation_dirty_district);
    next_version := (SELECT version + 1 FROM allocation_state);
    IF cardinality(codes) > 0 OR (SELECT run_started_at IS NOT NULL FROM allocation_state) THEN
        DELETE FROM district_profile WHERE district_code = ANY(codes);
        -- Per-district sums of the allocated tile counts, doors and imputed households.
        INSERT INTO district_profile (
            district_code, ind, men, men_pauv, men_1ind, men_5ind, men_prop, men_fmp, ind_snv,
            log_soc, log_total, ind_18_24, ind_25_39, ind_40_54, ind_55_64, ind_65_79, ind_80p,
            men_imputed, tiles, doors, door_households, alloc_version)
        SELECT d.code,
               sum(al.weight * t.ind), sum(al.weight * t.men), sum(al.weight * t.men_pauv),
               sum(al.weight * t.men_1ind), sum(al.weight * t.men_5ind),
               sum(al.weight * t.men_prop), sum(al.weight * t.men_fmp),
               sum(al.weight * t.ind_snv), sum(al.weight * t.log_soc),
               sum(al.weight * (coalesce(t.log_av45, 0) + coalesce(t.log_45_70, 0)
                                + coalesce(t.log_70_90, 0) + coalesce(t.log_ap90, 0)
                                + coalesce(t.log_inc, 0))),
               sum(al.weight * t.ind_18_24), sum(al.weight * t.ind_25_39),
               sum(al.weight * t.ind_40_54), sum(al.weight * t.ind_55_64),
               sum(al.weight * t.ind_65_79), sum(al.weight * t.ind_80p),
               coalesce(sum(al.weight * t.men) FILTER (WHERE t.i_est_200 = 1), 0),
               count(al.tile_id)::int,
               coalesce(dr.doors, 0), coalesce(dr.households, 0), next_version
        FROM district d
        LEFT JOIN district_alloc al ON al.district_code = d.code
        LEFT JOIN insee_tile t ON t.id = al.tile_id
        LEFT JOIN (
            SELECT dd.district_code, count(*)::int AS doors, sum(dd.households) AS households
            FROM door_district dd
            WHERE dd.district_code = ANY(codes)
            GROUP BY dd.district_code
        ) dr ON dr.district_code = d.code
        WHERE d.code = ANY(codes)
        GROUP BY d.code, dr.doors, dr.households;
        DELETE FROM allocation_dirty_district WHERE district_code = ANY(codes);
        UPDATE allocation_state SET
            version = next_version,
            refreshed_at = clock_timestamp(),
            run_started_at = NULL,
            run_blocks_done = 0,
            tiles = (SELECT count(*) FROM insee_tile),
            doors = (SELECT count(*) FROM door_district),
            districts = (SELECT count(*) FROM district),
            pairs = (SELECT count(*) FROM district_alloc);
    END IF;
    UPDATE allocation_state SET stale = full_pending OR EXISTS (SELECT 1 FROM allocation_dirty);
    RETURN (SELECT version FROM allocation_state);
END $fn$;

-- Everything queued, in the caller's transaction (imports, tests, the service's lazy refresh);
-- the new version. `porte allocation refresh` runs the same steps committing after each one.
CREATE OR REPLACE FUNCTION porte_refresh_allocation()
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    step record;
BEGIN
    LOOP
        SELECT * INTO step FROM porte_allocation_step(256);
        EXIT WHEN step.done = 0 OR step.remaining = 0;
    END LOOP;
    RETURN porte_allocation_finish();
END $fn$;
