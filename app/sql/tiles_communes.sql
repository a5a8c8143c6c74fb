-- The districts layer at low zoom (z <= 8) of a national or départemental campaign: districts
-- merged by commune (commune_shape, simplified per zoom), with the commune's summary of the
-- campaign's own ranking (ranking_commune_score: mean score, best rank, districts; a count only
-- when every district of the commune shows it, so nothing hidden can be recovered by
-- subtraction). Communes with a district in the territory only.
-- The score, rank and counts: slot "values" (tiles_commune_values.sql).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer, $7 k, $8 shape level.
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int) AS benv
),
map AS (SELECT scoring_id FROM ranking_default WHERE campaign_id = $1),
mvt AS (
    SELECT ST_AsMVTGeom(cs.geom, b.env, $5::int, $6::int, true) AS geom,
           cs.commune_code AS code, cs.commune_name AS name, 'commune' AS kind, rc.districts,
{values}    FROM commune_shape cs
    CROSS JOIN bounds b
    LEFT JOIN map ON true
    LEFT JOIN ranking_commune_score rc ON rc.campaign_id = $1 AND rc.scoring_id = map.scoring_id
                                      AND rc.commune_code = cs.commune_code
    WHERE cs.level = $8::int AND cs.geom && b.benv
      AND (rc.commune_code IS NOT NULL OR EXISTS (
              SELECT 1 FROM district d
              JOIN campaign_district cd ON cd.campaign_id = $1 AND cd.district_code = d.code
              WHERE d.commune_code = cs.commune_code))
)
SELECT ST_AsMVT(mvt.*, 'districts', $5::int, 'geom') FROM mvt
