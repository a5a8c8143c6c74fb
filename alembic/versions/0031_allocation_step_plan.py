"""The allocation step joins a block's doors to their district through an index.

``porte_allocation_step`` found the district of a block's doors in the same statement that listed
them; estimating a handful of doors per block, the planner joined the two lists by a nested loop
over a sorted list, which took minutes for two blocks of a few tens of thousands of doors (found by
the soak benchmark: 438 s after importing 20,000 doors; 1.5 s now, same rows). The doors are now
listed first into the temporary table (with a primary key, then analysed), and their district set
by an UPDATE joined on that key.

The function is that of app/sql/allocation.sql at this revision (snapshot below).

Revision ID: 0031_allocation_step_plan
Revises: 0014_privacy_confirmation
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0031_allocation_step_plan"
down_revision = "0014_privacy_confirmation"
branch_labels = None
depends_on = None

STEP_SQL = r"""
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
END $fn$
"""


def upgrade() -> None:
    op.execute(STEP_SQL)


def downgrade() -> None:
    path = Path(__file__).with_name("0021_allocation_incremental.py")
    spec = importlib.util.spec_from_file_location("porte_rev_0021", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (previous,) = [
        s
        for s in module.statements(module.ALLOCATION_SQL)
        if "FUNCTION porte_allocation_step(" in s
    ]
    op.execute(previous)
