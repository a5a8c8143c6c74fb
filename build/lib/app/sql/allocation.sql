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
