-- The districts layer at zooms 5-8 of a national or départemental campaign from the communes cut
-- and encoded in advance for each tile (map_tile_feature: extent 4096, buffer 64), with the
-- commune's summary of the campaign's own ranking (as tiles_communes.sql); only communes with a
-- district in the territory.
-- The score, rank and counts: slot "values" (tiles_commune_values.sql).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 k.
WITH map AS (SELECT scoring_id FROM ranking_default WHERE campaign_id = $1),
mvt AS (
    SELECT f.geom, f.code, f.name, f.kind, rc.districts,
{values}    FROM map_tile_feature f
    LEFT JOIN map ON true
    LEFT JOIN ranking_commune_score rc ON rc.campaign_id = $1 AND rc.scoring_id = map.scoring_id
                                      AND rc.commune_code = f.code
    WHERE f.z = $2::int AND f.x = $3::int AND f.y = $4::int
      AND (rc.commune_code IS NOT NULL OR EXISTS (
              SELECT 1 FROM district d
              JOIN campaign_district cd ON cd.campaign_id = $1 AND cd.district_code = d.code
              WHERE d.commune_code = f.code))
)
SELECT ST_AsMVT(mvt.*, 'districts', 4096, 'geom') FROM mvt
