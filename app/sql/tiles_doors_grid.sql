-- Doors aggregated per grid cell for low zooms (z <= 14): counts by status, one point per cell at
-- the cell's centre, so a tile stays small whatever the density (at most $7 x $7 features).
-- Binds: $1 campaign_id uuid, $2 z, $3 x, $4 y, $5 extent, $6 buffer, $7 cells per tile side.
-- Organiser and admin: every door (the slots "mine" and "only_mine" left empty). Volunteer: only
-- the doors of their active assignments (slot "mine": tiles_doors_mine.sql, binds $8 and $9 too;
-- "only_mine": the doors of those assignments), filled in by app/services/field/tiles.py.
WITH bounds AS (
    SELECT env,
           ST_XMin(env) AS xmin, ST_YMin(env) AS ymin,
           (ST_XMax(env) - ST_XMin(env)) / $7 AS cell,
           ST_Transform(env, 4326) AS env4326
    FROM (SELECT ST_TileEnvelope($2::int, $3::int, $4::int) AS env) t
),
{mine}doors AS (
    -- Web-mercator x/y from lon/lat by formula: cheaper than ST_Transform on every door.
    SELECT a.lon * 20037508.342789244 / 180 AS mx,
           ln(tan(pi() / 4 + radians(a.lat) / 2)) * 6378137 AS my,
           s.status
    FROM address a
    CROSS JOIN bounds b
    CROSS JOIN LATERAL door_status($1, a.id) s
    WHERE a.geom && b.env4326{only_mine}
),
cells AS (
    SELECT floor((d.mx - b.xmin) / b.cell) AS cx,
           floor((d.my - b.ymin) / b.cell) AS cy,
           count(*) AS doors,
           count(*) FILTER (WHERE d.status = 'pending') AS pending,
           count(*) FILTER (WHERE d.status = 'visited') AS visited,
           count(*) FILTER (WHERE d.status = 'flagged') AS flagged
    FROM doors d CROSS JOIN bounds b
    -- the index's bounding boxes are a little wider than the tile: keep doors of this tile only
    WHERE d.mx >= b.xmin AND d.mx < b.xmin + $7 * b.cell
      AND d.my >= b.ymin AND d.my < b.ymin + $7 * b.cell
    GROUP BY 1, 2
),
mvt AS (
    SELECT ST_AsMVTGeom(
               ST_SetSRID(ST_MakePoint(b.xmin + (c.cx + 0.5) * b.cell,
                                       b.ymin + (c.cy + 0.5) * b.cell), 3857),
               b.env, $5::int, $6::int, true) AS geom,
           c.doors::int, c.pending::int, c.visited::int, c.flagged::int
    FROM cells c CROSS JOIN bounds b
)
SELECT ST_AsMVT(mvt.*, 'doors', $5::int, 'geom') FROM mvt
