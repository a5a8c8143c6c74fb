-- SYNTHETIC département for the ranking benchmark, built from the 92-13 sample (run as owner).
-- Binds: :copies (11), :scale (sqrt(copies)), :door_modulo (keep 1 door in N per copy).
-- Each copy c of the 91 polling stations is scaled by `scale` around the sample's lower-left
-- corner (so it covers `copies` times the area) and moved by (ox, oy); the tiles and the synthetic
-- doors are repeated on a grid of blocks (multiples of 200 m, so tile ids stay true to their
-- squares) to fill the scaled area. Codes start with 'SYN'; every row says 'synthetic-bench'.
CREATE TEMP TABLE ext ON COMMIT DROP AS
SELECT (floor(ST_XMin(e) / 200) * 200)::float8 AS x0, (floor(ST_YMin(e) / 200) * 200)::float8 AS y0,
       (ceil((ST_XMax(e) - floor(ST_XMin(e) / 200) * 200) / 200) * 200)::float8 AS w,
       (ceil((ST_YMax(e) - floor(ST_YMin(e) / 200) * 200) / 200) * 200)::float8 AS h
FROM (SELECT ST_Extent(geom_3035)::geometry AS e FROM district) s;

CREATE TEMP TABLE cp ON COMMIT DROP AS
SELECT c, (c % 4) * (4 * w + 10000) AS ox, (c / 4) * (4 * h + 10000) AS oy
FROM generate_series(0, CAST(:copies AS int) - 1) c, ext;

CREATE TEMP TABLE blk ON COMMIT DROP AS
SELECT i, j, i * w AS bx, j * h AS by FROM generate_series(0, 3) i, generate_series(0, 3) j, ext
WHERE i * w < CAST(:scale AS float8) * w AND j * h < CAST(:scale AS float8) * h;

CREATE TEMP TABLE new_tile ON COMMIT DROP AS
SELECT 'CRS3035RES200mN' || (ST_YMin(t.geom) + cp.oy + blk.by)::bigint
       || 'E' || (ST_XMin(t.geom) + cp.ox + blk.bx)::bigint AS new_id,
       ST_Translate(t.geom, cp.ox + blk.bx, cp.oy + blk.by) AS new_geom, t.*
FROM insee_tile t CROSS JOIN cp CROSS JOIN blk CROSS JOIN ext
WHERE ST_XMin(t.geom) + blk.bx < ext.x0 + CAST(:scale AS float8) * ext.w
  AND ST_YMin(t.geom) + blk.by < ext.y0 + CAST(:scale AS float8) * ext.h;

CREATE TEMP TABLE new_district ON COMMIT DROP AS
SELECT 'SYN' || lpad(cp.c::text, 2, '0') || '_' || d.code AS code, d.name, d.commune_code,
       d.commune_name || ' (synthetic copy ' || cp.c || ')' AS commune_name,
       ST_Affine(d.geom_3035, CAST(:scale AS float8), 0, 0, CAST(:scale AS float8),
                 ext.x0 * (1 - CAST(:scale AS float8)) + cp.ox,
                 ext.y0 * (1 - CAST(:scale AS float8)) + cp.oy) AS g, d.code AS orig, cp.c
FROM district d CROSS JOIN cp CROSS JOIN ext;

CREATE TEMP TABLE new_door ON COMMIT DROP AS
SELECT a.id AS orig, cp.c, blk.i, blk.j, a.households,
       ST_Transform(ST_Translate(ST_Transform(a.geom, 3035), cp.ox + blk.bx, cp.oy + blk.by), 4326) AS p
FROM address a CROSS JOIN cp CROSS JOIN blk CROSS JOIN ext
WHERE a.source = 'synthetic'
  AND abs(hashtext(a.id || ':' || cp.c || ':' || blk.i || ':' || blk.j)) % CAST(:door_modulo AS int) = 0
  AND ST_X(ST_Transform(a.geom, 3035)) + blk.bx < ext.x0 + CAST(:scale AS float8) * ext.w
  AND ST_Y(ST_Transform(a.geom, 3035)) + blk.by < ext.y0 + CAST(:scale AS float8) * ext.h;

CREATE TEMP TABLE new_result ON COMMIT DROP AS
SELECT r.election_id, nd.code AS district_code, r.commune_code, r.inscrits, r.votants,
       r.abstentions, r.exprimes, r.blancs, r.nuls
FROM election_result r JOIN new_district nd ON nd.orig = r.district_code;

CREATE TEMP TABLE new_cand ON COMMIT DROP AS
SELECT c.election_id, nd.code AS district_code, c.position, c.nuance, c.label, c.voix
FROM election_candidate_result c JOIN new_district nd ON nd.orig = c.district_code;

TRUNCATE insee_tile, district, election_result, election_candidate_result;
DELETE FROM address;

INSERT INTO insee_tile (id, geom, ind, men, men_pauv, men_1ind, men_5ind, men_prop, men_fmp,
    ind_snv, men_surf, men_coll, men_mais, log_av45, log_45_70, log_70_90, log_ap90, log_inc,
    log_soc, ind_0_3, ind_4_5, ind_6_10, ind_11_17, ind_18_24, ind_25_39, ind_40_54, ind_55_64,
    ind_65_79, ind_80p, ind_inc, i_est_200, lcog_geo, source_file)
SELECT DISTINCT ON (new_id) new_id, new_geom, ind, men, men_pauv, men_1ind, men_5ind, men_prop, men_fmp,
    ind_snv, men_surf, men_coll, men_mais, log_av45, log_45_70, log_70_90, log_ap90, log_inc,
    log_soc, ind_0_3, ind_4_5, ind_6_10, ind_11_17, ind_18_24, ind_25_39, ind_40_54, ind_55_64,
    ind_65_79, ind_80p, ind_inc, i_est_200, lcog_geo, 'synthetic-bench'
FROM new_tile ORDER BY new_id;

INSERT INTO district (code, kind, name, commune_code, commune_name, geom, geom_3035, source_file)
SELECT code, 'bureau_de_vote', name, commune_code, commune_name,
       ST_Multi(ST_Transform(g, 4326)), ST_Multi(g), 'synthetic-bench'
FROM new_district;

INSERT INTO address (ban_id, numero, nom_voie, code_insee, lon, lat, households, source,
                     source_file)
SELECT 'synthetic_bench_' || row_number() OVER (), 1, 'voie fictive', '99999', ST_X(p), ST_Y(p),
       households, 'synthetic', 'synthetic-bench'
FROM new_door;

INSERT INTO election_result SELECT * FROM new_result;
INSERT INTO election_candidate_result SELECT * FROM new_cand;
