-- The door points of a tile from the CTE "doors" (and "bounds"): each door's status and
-- households, and for a volunteer its walking order (slot "seq"); the tile and how many doors it
-- holds. The slot "points" of tiles_doors.sql and tiles_doors_volunteer.sql, filled in by
-- app/services/field/tiles.py.
mvt AS (
    SELECT ST_AsMVTGeom(ST_Transform(d.geom, 3857), b.env, $5::int, $6::int, true) AS geom,
           d.id,{seq}
           s.status,
           CASE WHEN d.households > 1 THEN round(d.households)::int END AS households
    FROM doors d
    CROSS JOIN bounds b
    CROSS JOIN LATERAL door_status($1, d.id) s
)
SELECT ST_AsMVT(mvt.*, 'doors', $5::int, 'geom') AS tile, count(mvt.geom) AS doors
FROM mvt
