-- Door points with their status for one tile (organiser and admin: every door in the tile).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer, $7 feature cap.
-- Status: door_status() (migration 0030_door_status): flagged, visited in the current round, or
-- pending.
-- The tile of the doors: slot "points" (tiles_doors_points.sql).
WITH bounds AS (
    SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env,
           -- doors are stored in 4326: query them with the (buffered) envelope in 4326 so the
           -- GiST index on address.geom is used; a mercator tile is a lon/lat rectangle.
           ST_Transform(ST_TileEnvelope($2::int, $3::int, $4::int, margin => $6::float8 / $5::int), 4326) AS env4326
),
doors AS (
    SELECT a.id, a.geom, a.households
    FROM address a, bounds b
    WHERE a.geom && b.env4326
    LIMIT $7
),
{points}
