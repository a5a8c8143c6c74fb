-- District outlines (polling stations, IRIS) with the campaign's ranking score and aggregates.
-- The score comes from the campaign's latest ranking (the ranking_cache: computed by
-- GET /ranking; districts have no score until it ran once). Its counts are the published ones
-- (app/disclosure.py: supporters and visited doors hidden there are already blank); counts
-- below k are left out too, as in the ranking API (apply_k). Binds: $1 campaign_id uuid, $2 z,
-- $3 x, $4 y, $5 extent, $6 buffer, $7 k.
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           ST_Transform(ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int), 4326) AS env4326
),
latest AS (
    SELECT result FROM ranking_cache WHERE campaign_id = $1 ORDER BY computed_at DESC LIMIT 1
),
ranked AS (
    SELECT e->>'code' AS code,
           (e->>'score')::float8 AS score,
           (e->>'rank')::int AS rank,
           e->'counts' AS counts
    FROM latest, jsonb_array_elements(latest.result->'districts') AS e
),
mvt AS (
    SELECT ST_AsMVTGeom(ST_Transform(d.geom, 3857), b.env, $5::int, $6::int, true) AS geom,
           d.code, d.name, d.kind, d.commune_name,
           round(r.score::numeric, 3)::float8 AS score,
           r.rank,
           -- a count is shown only when >= k and not already suppressed by the ranking
           CASE WHEN (r.counts->>'doors')::float8 >= $7::int
                     AND NOT coalesce((r.counts->>'doors_suppressed')::boolean, false)
                THEN round((r.counts->>'doors')::numeric)::int END AS doors,
           CASE WHEN (r.counts->>'households')::float8 >= $7::int
                     AND NOT coalesce((r.counts->>'households_suppressed')::boolean, false)
                THEN round((r.counts->>'households')::numeric)::int END AS households,
           CASE WHEN (r.counts->>'supporters')::float8 >= $7::int
                     AND NOT coalesce((r.counts->>'supporters_suppressed')::boolean, false)
                THEN round((r.counts->>'supporters')::numeric)::int END AS supporters,
           CASE WHEN (r.counts->>'visited_doors')::float8 >= $7::int
                     AND NOT coalesce((r.counts->>'visited_doors_suppressed')::boolean, false)
                THEN round((r.counts->>'visited_doors')::numeric)::int END AS visited_doors
    FROM district d
    CROSS JOIN bounds b
    LEFT JOIN ranked r ON r.code = d.code
    WHERE d.geom && b.env4326
)
SELECT ST_AsMVT(mvt.*, 'districts', $5::int, 'geom') FROM mvt
