-- The districts layer at zooms 9-12 from the features cut and encoded in advance for each tile
-- (map_tile_feature: extent 4096, buffer 64), with the campaign's own ranking (ranking_default)
-- and its counts (>= k only); only the districts of the campaign's territory. Same attributes
-- as tiles_districts.sql, which draws the other zooms and other extents.
-- The score, rank and counts: slot "values" (tiles_district_values.sql).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 k.
WITH map AS (SELECT scoring_id, snapshot_id FROM ranking_default WHERE campaign_id = $1),
mvt AS (
    SELECT f.geom, f.code, f.name, f.kind, f.commune_name,
{values}    FROM map_tile_feature f
    JOIN campaign_district cd ON cd.campaign_id = $1 AND cd.district_code = f.code
    LEFT JOIN map ON true
    LEFT JOIN ranking_score sc ON sc.campaign_id = $1 AND sc.scoring_id = map.scoring_id
                              AND sc.district_code = f.code
    LEFT JOIN ranking_value v ON v.campaign_id = $1 AND v.snapshot_id = map.snapshot_id
                             AND v.district_code = f.code
    WHERE f.z = $2::int AND f.x = $3::int AND f.y = $4::int
)
SELECT ST_AsMVT(mvt.*, 'districts', 4096, 'geom') FROM mvt
