-- Turf outlines with their progress in the current round and their active assignments.
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer, $7 only the caller's turfs
-- (volunteers), $8 caller's user id, $9 invite's assignment id. Analysts get no turf layer
-- (app.authz), as in the field API (docs/field.md).
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           ST_Transform(ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int), 4326) AS env4326
),
active AS (
    SELECT s.id, s.turf_id, s.volunteer_user_id FROM assignment s
    WHERE s.campaign_id = $1 AND s.ended_at IS NULL
      AND (s.starts_at IS NULL OR s.starts_at <= now())
      AND (s.ends_at IS NULL OR s.ends_at > now())
),
t AS (
    SELECT t.id, t.name, t.status, t.district_code, t.geom
    FROM turf t CROSS JOIN bounds b
    WHERE t.campaign_id = $1 AND t.status = 'active' AND t.geom && b.env4326
      AND (NOT $7 OR t.id IN (
          SELECT turf_id FROM active WHERE volunteer_user_id = $8 OR id = $9
      ))
),
stats AS (
    SELECT td.turf_id,
           count(*) AS doors,
           count(*) FILTER (WHERE s.status = 'visited') AS visited,
           count(*) FILTER (WHERE s.status = 'flagged') AS flagged
    FROM turf_door td
    CROSS JOIN LATERAL door_status($1, td.address_id) s
    WHERE td.campaign_id = $1 AND td.active AND td.turf_id IN (SELECT id FROM t)
    GROUP BY td.turf_id
),
mvt AS (
    SELECT ST_AsMVTGeom(ST_Transform(t.geom, 3857), b.env, $5::int, $6::int, true) AS geom,
           t.id::text AS id, t.name, t.status, t.district_code,
           (SELECT count(*) FROM active a WHERE a.turf_id = t.id)::int AS assignments,
           coalesce(s.doors, 0)::int AS doors,
           coalesce(s.visited, 0)::int AS visited,
           coalesce(s.flagged, 0)::int AS flagged,
           CASE WHEN s.doors > 0
                THEN round((s.visited + s.flagged)::numeric / s.doors, 3)::float8 END AS progress
    FROM t
    CROSS JOIN bounds b
    LEFT JOIN stats s ON s.turf_id = t.id
)
SELECT ST_AsMVT(mvt.*, 'turfs', $5::int, 'geom') FROM mvt
