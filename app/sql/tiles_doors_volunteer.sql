-- Door points of the caller's active assignments only (volunteer accounts and invite sessions),
-- with their walking order. Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer,
-- $7 feature cap, $8 volunteer user id (NULL for invite sessions), $9 the invite's assignment id.
-- The slot "mine": tiles_doors_mine.sql, filled in by app/services/field/tiles.py.
-- The tile of the doors: slot "points" (tiles_doors_points.sql).
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           ST_Transform(ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int), 4326) AS env4326
),
{mine}doors AS (
    SELECT a.id, a.geom, a.households, min(ad.seq) AS seq
    FROM assignment_door ad
    JOIN address a ON a.id = ad.address_id
    CROSS JOIN bounds b
    WHERE ad.campaign_id = $1 AND ad.assignment_id IN (SELECT id FROM mine)
      AND a.geom && b.env4326
    GROUP BY a.id, a.geom, a.households
    LIMIT $7
),
{points}
