-- District outlines (polling stations, IRIS) of the campaign's territory with the score, rank and
-- aggregates of the campaign's own ranking (ranking_default: its saved weights and election, as
-- the analyst map lists it; districts have no score until that ranking ran once). Geometries are
-- the ones simplified for the zoom (district_shape, zooms 9-12; $8 NULL or a district without a
-- shape yet: the full polygon). Its counts are the published ones (app/disclosure/: supporters
-- and visited doors hidden there are already blank); counts below k are left out too, as in the
-- ranking API (apply_k).
-- The score, rank and counts: slot "values" (tiles_district_values.sql).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer, $7 k, $8 shape level.
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           ST_Transform(ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int), 4326) AS env4326
),
mvt AS (
    SELECT ST_AsMVTGeom(coalesce(s.geom, ST_Transform(d.geom, 3857)), b.env, $5::int, $6::int, true)
               AS geom,
           d.code, d.name, d.kind, d.commune_name,
{values}    FROM district d
    JOIN campaign_district cd ON cd.campaign_id = $1 AND cd.district_code = d.code
    CROSS JOIN bounds b
    LEFT JOIN district_shape s ON s.district_code = d.code AND s.level = $8::int
    LEFT JOIN ranking_default m ON m.campaign_id = $1
    LEFT JOIN ranking_score sc ON sc.campaign_id = $1 AND sc.scoring_id = m.scoring_id
                              AND sc.district_code = d.code
    LEFT JOIN ranking_value v ON v.campaign_id = $1 AND v.snapshot_id = m.snapshot_id
                             AND v.district_code = d.code
    WHERE d.geom && b.env4326
)
SELECT ST_AsMVT(mvt.*, 'districts', $5::int, 'geom') FROM mvt
