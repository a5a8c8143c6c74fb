-- SYNTHETIC country for the national benchmark, built from the real 92-13 sample (run as owner,
-- after the sample is loaded). Nothing here is real: every row says 'synthetic'.
-- Binds (replaced as text): :copies (759 -> 69,069 polling stations), :scale (each copy covers
-- scale^2 times the sample's area), :doors (how many doors to keep, about), :cols (copies per
-- row of the grid), :per_dep (copies per département).
--
-- Copy c of the 91 stations is scaled by `scale` around the sample's lower-left corner and moved
-- to its cell of a grid laid over France's place in EPSG:3035 (cells aligned on 200 m, so tile
-- ids stay true to their squares); the sample's tiles and doors are repeated on blocks to fill the
-- scaled area. Each copy is one legislative constituency of 91 stations in 4 communes (as 92-13);
-- `per_dep` copies make a département (codes 01..95 and 2A/2B). Codes follow the real ones:
-- commune DDNNN, station DDNNN_SSSS, constituency DD-NN.
DROP SCHEMA IF EXISTS syn CASCADE;
CREATE SCHEMA syn;

CREATE TABLE syn.ext AS
SELECT (floor(ST_XMin(e) / 200) * 200)::float8 AS x0, (floor(ST_YMin(e) / 200) * 200)::float8 AS y0,
       (ceil((ST_XMax(e) - floor(ST_XMin(e) / 200) * 200) / 200) * 200)::float8 AS w,
       (ceil((ST_YMax(e) - floor(ST_YMin(e) / 200) * 200) / 200) * 200)::float8 AS h
FROM (SELECT ST_Extent(geom_3035)::geometry AS e FROM district) s;

CREATE TABLE syn.dep AS
SELECT row_number() OVER (ORDER BY code) - 1 AS i, code
FROM (SELECT lpad(n::text, 2, '0') AS code FROM generate_series(1, 95) n WHERE n <> 20
      UNION ALL SELECT '2A' UNION ALL SELECT '2B') d;

-- Grid cells: pitch = the scaled copy plus 2 km, rounded up to 200 m; origin near Brittany's
-- south-west in EPSG:3035 (3,300 km E, 2,300 km N).
CREATE TABLE syn.cp AS
SELECT c,
       3300000 + (c % CAST(:cols AS int)) * pitch_x - x0 AS ox,
       2300000 + (c / CAST(:cols AS int)) * pitch_y - y0 AS oy,
       dep.code AS dep,
       c % CAST(:per_dep AS int) AS k
FROM generate_series(0, CAST(:copies AS int) - 1) c
CROSS JOIN syn.ext
CROSS JOIN LATERAL (SELECT ceil((CAST(:scale AS float8) * w + 2000) / 200) * 200 AS pitch_x,
                           ceil((CAST(:scale AS float8) * h + 2000) / 200) * 200 AS pitch_y) p
JOIN syn.dep ON dep.i = c / CAST(:per_dep AS int);

CREATE TABLE syn.blk AS
SELECT i, j, i * w AS bx, j * h AS by FROM generate_series(0, 9) i, generate_series(0, 9) j, syn.ext
WHERE i * w < CAST(:scale AS float8) * w AND j * h < CAST(:scale AS float8) * h;

-- The sample's four communes, numbered 1..4 in every copy.
CREATE TABLE syn.commune AS
SELECT commune_code AS orig, row_number() OVER (ORDER BY commune_code) AS n
FROM (SELECT DISTINCT commune_code FROM district) d;

CREATE TABLE syn.tile AS
SELECT DISTINCT ON (new_id) t.*
FROM (
    SELECT 'CRS3035RES200mN' || (ST_YMin(t.geom) + cp.oy + blk.by)::bigint
           || 'E' || (ST_XMin(t.geom) + cp.ox + blk.bx)::bigint AS new_id,
           cp.dep || lpad((cp.k * 4 + 1)::text, 3, '0') AS lcog,
           t.*
    FROM insee_tile t CROSS JOIN syn.cp cp CROSS JOIN syn.blk blk CROSS JOIN syn.ext ext
    WHERE ST_XMin(t.geom) + blk.bx < ext.x0 + CAST(:scale AS float8) * ext.w
      AND ST_YMin(t.geom) + blk.by < ext.y0 + CAST(:scale AS float8) * ext.h
) t
ORDER BY new_id;

CREATE TABLE syn.district AS
SELECT cp.dep || lpad((cp.k * 4 + cm.n)::text, 3, '0') || '_' || split_part(d.code, '_', 2)
           AS code,
       d.name || ' (synthetic)' AS name,
       cp.dep || lpad((cp.k * 4 + cm.n)::text, 3, '0') AS commune_code,
       'Commune synthétique ' || cp.dep || '-' || lpad((cp.k * 4 + cm.n)::text, 3, '0')
           AS commune_name,
       cp.dep AS dep,
       cp.dep || '-' || lpad((cp.k + 1)::text, 2, '0') AS constituency,
       ST_Multi(ST_Transform(ST_Affine(d.geom_3035, CAST(:scale AS float8), 0, 0,
                                       CAST(:scale AS float8),
                                       ext.x0 * (1 - CAST(:scale AS float8)) + cp.ox,
                                       ext.y0 * (1 - CAST(:scale AS float8)) + cp.oy), 4326))
           AS geom,
       d.code AS orig
FROM district d
JOIN syn.commune cm ON cm.orig = d.commune_code
CROSS JOIN syn.cp cp CROSS JOIN syn.ext ext;

-- How many doors the copies could hold, to keep about :doors of them.
CREATE TABLE syn.door_budget AS
SELECT least(1.0, 1.002 * CAST(:doors AS float8) / (count(*) * CAST(:copies AS float8))) AS keep
FROM address a CROSS JOIN syn.blk blk CROSS JOIN syn.ext ext
WHERE a.source = 'synthetic'
  AND ST_X(ST_Transform(a.geom, 3035)) + blk.bx < ext.x0 + CAST(:scale AS float8) * ext.w
  AND ST_Y(ST_Transform(a.geom, 3035)) + blk.by < ext.y0 + CAST(:scale AS float8) * ext.h;

-- A door keeps its original commune, renumbered in its copy (doors are moved, not scaled: the
-- commune is approximate near borders, as it does not matter to the allocation).
CREATE TABLE syn.door AS
SELECT row_number() OVER () AS n, x.*
FROM (
    SELECT cp.dep, cp.dep || lpad((cp.k * 4 + cm.n)::text, 3, '0') AS commune_code,
           a.households,
           ST_Transform(ST_Translate(ST_Transform(a.geom, 3035), cp.ox + blk.bx, cp.oy + blk.by),
                        4326) AS p
    FROM address a
    JOIN syn.commune cm ON cm.orig = a.code_insee
    CROSS JOIN syn.cp cp CROSS JOIN syn.blk blk CROSS JOIN syn.ext ext CROSS JOIN syn.door_budget b
    WHERE a.source = 'synthetic'
      AND abs(hashtext(a.id || ':' || cp.c || ':' || blk.i || ':' || blk.j)) % 1000000
          < 1000000 * b.keep
      AND ST_X(ST_Transform(a.geom, 3035)) + blk.bx < ext.x0 + CAST(:scale AS float8) * ext.w
      AND ST_Y(ST_Transform(a.geom, 3035)) + blk.by < ext.y0 + CAST(:scale AS float8) * ext.h
) x;

CREATE TABLE syn.result AS
SELECT e.name AS election, d.code AS district_code, d.commune_code, r.inscrits, r.votants,
       r.abstentions, r.exprimes, r.blancs, r.nuls
FROM election_result r
JOIN election e ON e.id = r.election_id
JOIN syn.district d ON d.orig = r.district_code
WHERE e.name IN ('legislatives_2024_t1', 'legislatives_2022_t2');

CREATE TABLE syn.cand AS
SELECT e.name AS election, d.code AS district_code, c.position, c.nuance, c.label, c.voix
FROM election_candidate_result c
JOIN election e ON e.id = c.election_id
JOIN syn.district d ON d.orig = c.district_code
WHERE e.name IN ('legislatives_2024_t1', 'legislatives_2022_t2');

ANALYZE syn.tile;
ANALYZE syn.district;
ANALYZE syn.door
