-- Local geocoder: one set-based pass over a batch of parsed addresses
-- (app/services/people/geocoder.py). One output row per input row.
-- Binds (arrays of equal length): :idx int[], :num int[], :suf text[], :suf_alt text[],
-- :street text[] (norm_name), :core text[] (street without its type), :postcode text[] (the
-- typed digits), :city text[] (norm_city), :dept text[] (first two digits typed), :maxe int[]
-- (edits allowed in the typed city name); :near_idx int[], :near_pc text[]: the postcodes one
-- digit away from a typed one (wrong, missing or swapped digit).
--
-- 1. Commune candidates, each with a score: the name as typed (commune, former commune, or the
--    city of an arrondissement), the communes of the postcode, of a postcode one digit away,
--    of the postal département, then of the country; a misspelt name counts only within a few
--    edits. Kept: the best candidate and those within 0.03 of it.
-- 2. Street within those communes: normalised name, then the name without its type, then the
--    best trigram similarity among the commune's own streets (never a national search).
-- 3. Door: exact number and suffix, else interpolated between same-side neighbours.
-- A best street found in two cities with close scores is an ambiguity: no door, no commune.
WITH input AS (
    SELECT t.idx, t.num,
           nullif(t.suf, '') AS suf, nullif(t.suf_alt, '') AS suf_alt,
           coalesce(t.street, '') AS street_norm, coalesce(t.core, '') AS street_core,
           nullif(t.postcode, '') AS postcode, nullif(t.city, '') AS city_norm,
           nullif(t.dept, '') AS dept, t.maxe
    FROM unnest(CAST(:idx AS int[]), CAST(:num AS int[]), CAST(:suf AS text[]),
                CAST(:suf_alt AS text[]), CAST(:street AS text[]), CAST(:core AS text[]),
                CAST(:postcode AS text[]), CAST(:city AS text[]), CAST(:dept AS text[]),
                CAST(:maxe AS int[]))
         AS t(idx, num, suf, suf_alt, street, core, postcode, city, dept, maxe)
),
near AS (
    SELECT n.idx, n.pc FROM unnest(CAST(:near_idx AS int[]), CAST(:near_pc AS text[])) AS n(idx, pc)
),
-- the name exactly: commune, former commune, or the city of an arrondissement ("Paris")
by_name AS (
    SELECT i.idx, c.code_insee, c.code_postal, c.nom_commune, c.city_code, c.dept,
           CASE WHEN c.commune_norm = i.city_norm OR c.city_norm = i.city_norm THEN ''
                ELSE c.nom_ancienne END AS ancienne
    FROM input i JOIN geocode_commune c
      ON c.commune_norm = i.city_norm OR c.ancienne_norm = i.city_norm
      OR c.city_norm = i.city_norm
),
named AS (SELECT DISTINCT idx FROM by_name),
-- other communes: those of the typed postcode, of a postcode one digit away, of the postal
-- département (a misspelt name), of the country (a misspelt name, no postcode at all)
others AS (
    SELECT i.idx, c.*, 3 AS pcm
    FROM input i JOIN geocode_commune c ON c.code_postal = i.postcode
    UNION ALL
    SELECT i.idx, c.*, 2
    FROM near n JOIN input i USING (idx) JOIN geocode_commune c ON c.code_postal = n.pc
    WHERE i.city_norm IS NOT NULL
    UNION ALL
    SELECT i.idx, c.*, 1
    FROM input i JOIN geocode_commune c ON c.dept = i.dept
    WHERE i.city_norm IS NOT NULL AND i.idx NOT IN (SELECT idx FROM named)
    UNION ALL
    SELECT i.idx, c.*, 0
    FROM input i JOIN geocode_commune c
      ON c.commune_norm % i.city_norm OR (c.ancienne_norm <> '' AND c.ancienne_norm % i.city_norm)
    WHERE i.dept IS NULL AND i.city_norm IS NOT NULL AND i.idx NOT IN (SELECT idx FROM named)
),
fuzzy AS (
    -- edits between the typed name and each name of the commune (as typed, former, city)
    SELECT o.idx, o.code_insee, o.code_postal, o.nom_commune, o.city_code, o.dept, o.pcm,
           o.nom_ancienne, i.city_norm, i.maxe,
           CASE WHEN i.city_norm IS NULL THEN NULL ELSE least(
               levenshtein(o.commune_norm, i.city_norm),
               levenshtein(o.city_norm, i.city_norm),
               CASE WHEN o.ancienne_norm <> '' THEN levenshtein(o.ancienne_norm, i.city_norm)
                    END) END AS e,
           CASE WHEN o.ancienne_norm <> '' AND levenshtein(o.ancienne_norm, i.city_norm)
                     < least(levenshtein(o.commune_norm, i.city_norm),
                             levenshtein(o.city_norm, i.city_norm))
                THEN o.nom_ancienne ELSE '' END AS ancienne
    FROM others o JOIN input i USING (idx)
),
candidates AS (
    SELECT b.idx, b.code_insee, b.nom_commune, b.city_code, b.ancienne,
           1.0 * CASE WHEN i.postcode IS NULL THEN 0.95
                      WHEN b.code_postal = i.postcode THEN 1.0
                      WHEN b.code_postal IN (SELECT n.pc FROM near n WHERE n.idx = b.idx)
                           THEN 0.97
                      WHEN b.dept = i.dept OR b.code_postal = '' THEN 0.95
                      ELSE 0.85 END AS cscore
    FROM by_name b JOIN input i USING (idx)
    UNION ALL
    -- a commune of the postcode with no name typed; or a name a few edits away
    SELECT f.idx, f.code_insee, f.nom_commune, f.city_code, f.ancienne,
           CASE WHEN f.city_norm IS NULL THEN 0.9
                ELSE 0.8 + 0.15 * (1 - f.e::float8 / greatest(length(f.city_norm), 1)) END
           * CASE f.pcm WHEN 3 THEN 1.0 WHEN 2 THEN 0.97 WHEN 1 THEN 0.95 ELSE 0.95 END
    FROM fuzzy f
    WHERE (f.city_norm IS NULL AND f.pcm = 3) OR (f.e BETWEEN 1 AND f.maxe)
),
communes AS (
    -- per commune its best reading; kept when within 0.03 of the best commune
    SELECT idx, code_insee, nom_commune, city_code, ancienne, cscore FROM (
        SELECT DISTINCT ON (idx, code_insee) *, max(cscore) OVER (PARTITION BY idx) AS best
        FROM candidates ORDER BY idx, code_insee, cscore DESC, ancienne DESC) x
    WHERE cscore >= best - 0.03
),
street_exact AS (
    SELECT c.idx, s.code_insee, s.nom_voie, s.n, c.nom_commune, c.city_code, c.ancienne,
           c.cscore,
           CASE WHEN s.voie_norm = i.street_norm THEN 1.0
                WHEN i.street_core = i.street_norm THEN 0.95  -- no street type typed
                ELSE 0.9 END AS sim                           -- another street type typed
    FROM communes c JOIN input i USING (idx)
    JOIN geocode_street s ON s.code_insee = c.code_insee
     AND (s.voie_norm = i.street_norm OR s.voie_core = i.street_core)
    WHERE i.street_norm <> ''
),
street_fuzzy AS (
    -- only rows without an exact street: the best trigram match among each commune's streets
    SELECT c.idx, f.code_insee, f.nom_voie, f.n, c.nom_commune, c.city_code, c.ancienne,
           c.cscore, f.sim
    FROM communes c JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT s.code_insee, s.nom_voie, s.n,
               greatest(similarity(s.voie_norm, i.street_norm),
                        similarity(s.voie_core, i.street_core)) AS sim
        FROM geocode_street s
        WHERE s.code_insee = c.code_insee
        ORDER BY sim DESC, s.n DESC LIMIT 1) f
    WHERE i.street_norm <> '' AND f.sim >= 0.45
      AND c.idx NOT IN (SELECT idx FROM street_exact)
),
street_all AS (
    SELECT *, sim * cscore AS total,
           max(sim * cscore) OVER (PARTITION BY idx) AS best
    FROM (SELECT * FROM street_exact UNION ALL SELECT * FROM street_fuzzy) x
),
street_best AS (
    -- the best street(s): in one city (Paris: a street may cross arrondissements)
    SELECT DISTINCT ON (idx) idx, city_code
    FROM street_all WHERE total >= best - 1e-9
    ORDER BY idx, n DESC, code_insee
),
ambiguous AS (
    -- another city whose best street is almost as good: the commune cannot be told apart
    SELECT DISTINCT a.idx FROM street_all a JOIN street_best b USING (idx)
    WHERE a.city_code <> b.city_code AND a.total >= a.best - 0.02
),
street AS (
    SELECT a.idx, a.code_insee, a.nom_voie, a.n, a.nom_commune, a.ancienne, a.cscore, a.sim,
           row_number() OVER (PARTITION BY a.idx ORDER BY a.n DESC, a.code_insee) AS rk
    FROM street_all a JOIN street_best b USING (idx, city_code)
    WHERE a.total >= a.best - 1e-9 AND a.idx NOT IN (SELECT idx FROM ambiguous)
),
door AS (
    SELECT DISTINCT ON (st.idx) st.idx, a.id, a.lon, a.lat, a.numero, a.suffixe,
           a.code_insee, a.nom_voie, a.nom_commune,
           CASE WHEN lower(coalesce(a.suffixe, '')) = coalesce(i.suf, '') THEN 1.0
                WHEN lower(coalesce(a.suffixe, '')) = i.suf_alt THEN 0.98
                WHEN i.suf IS NOT NULL AND coalesce(a.suffixe, '') = '' THEN 0.9
                ELSE 0.85 END AS nscore
    FROM street st JOIN input i USING (idx)
    JOIN address a ON a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
                  AND a.numero = i.num
    ORDER BY st.idx, nscore DESC,
             (st.ancienne <> '' AND a.nom_ancienne_commune = st.ancienne) DESC, st.rk, a.id
),
interpolated AS (
    SELECT st.idx,
           lo.lon + (hi.lon - lo.lon) * (i.num - lo.numero)::float8 / (hi.numero - lo.numero)
               AS lon,
           lo.lat + (hi.lat - lo.lat) * (i.num - lo.numero)::float8 / (hi.numero - lo.numero)
               AS lat
    FROM street st JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT a.numero, a.lon, a.lat, a.geom FROM address a
        WHERE a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
          AND a.numero < i.num AND a.numero % 2 = i.num % 2
        ORDER BY a.numero DESC LIMIT 1) lo
    CROSS JOIN LATERAL (
        SELECT a.numero, a.lon, a.lat, a.geom FROM address a
        WHERE a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
          AND a.numero > i.num AND a.numero % 2 = i.num % 2
        ORDER BY a.numero ASC LIMIT 1) hi
    WHERE st.rk = 1 AND i.num IS NOT NULL
      AND st.idx NOT IN (SELECT idx FROM door)
      -- neighbours far apart say nothing about where the missing door is
      AND ST_DistanceSphere(lo.geom, hi.geom) <= 400
),
street_point AS (
    SELECT st.idx, avg(a.lon) AS lon, avg(a.lat) AS lat
    FROM street st
    JOIN address a ON a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
    WHERE st.rk = 1
      AND st.idx NOT IN (SELECT idx FROM door)
      AND st.idx NOT IN (SELECT idx FROM interpolated)
    GROUP BY st.idx
),
commune_only AS (
    -- no street: the commune when the candidates are one city (arrondissements: the first)
    SELECT idx, min(code_insee) AS code_insee, min(nom_commune) AS nom_commune,
           max(cscore) AS cscore, count(DISTINCT city_code) AS n_cities
    FROM communes GROUP BY idx
)
SELECT i.idx,
       CASE WHEN d.idx IS NOT NULL THEN 'housenumber'
            WHEN p.idx IS NOT NULL THEN 'interpolated'
            WHEN st.idx IS NOT NULL THEN 'street'
            WHEN cm.n_cities = 1 AND amb.idx IS NULL THEN 'commune'
            ELSE 'none' END AS level,
       round(CASE WHEN d.idx IS NOT NULL THEN st.sim * d.nscore * st.cscore
                  WHEN p.idx IS NOT NULL THEN st.sim * 0.7 * st.cscore
                  WHEN st.idx IS NOT NULL THEN st.sim * 0.5 * st.cscore
                  WHEN cm.n_cities = 1 AND amb.idx IS NULL THEN 0.2 * cm.cscore
                  ELSE 0 END::numeric, 3)::float8 AS score,
       coalesce(d.lon, p.lon, sp.lon) AS lon,
       coalesce(d.lat, p.lat, sp.lat) AS lat,
       d.id AS address_id,
       d.numero AS numero,
       d.suffixe AS suffixe,
       CASE WHEN d.idx IS NOT NULL THEN d.code_insee WHEN st.idx IS NOT NULL THEN st.code_insee
            WHEN cm.n_cities = 1 AND amb.idx IS NULL THEN cm.code_insee END AS code_insee,
       CASE WHEN d.idx IS NOT NULL THEN d.nom_commune WHEN st.idx IS NOT NULL THEN st.nom_commune
            WHEN cm.n_cities = 1 AND amb.idx IS NULL THEN cm.nom_commune END AS nom_commune,
       coalesce(d.nom_voie, st.nom_voie) AS nom_voie,
       i.street_norm = '' AS no_street,
       i.num IS NULL AS no_number,
       cm.n_cities,
       amb.idx IS NOT NULL AS ambiguous
FROM input i
LEFT JOIN street st ON st.idx = i.idx AND st.rk = 1
LEFT JOIN door d ON d.idx = i.idx
LEFT JOIN interpolated p ON p.idx = i.idx
LEFT JOIN street_point sp ON sp.idx = i.idx
LEFT JOIN commune_only cm ON cm.idx = i.idx
LEFT JOIN ambiguous amb ON amb.idx = i.idx
ORDER BY i.idx
