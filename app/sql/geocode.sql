-- Local geocoder: one set-based pass over a batch of parsed addresses
-- (app/services/people/geocoder.py). One output row per input row.
-- Binds (arrays of equal length): :idx int[], :num int[], :suf text[], :suf_alt text[],
-- :street text[] (norm_name), :core text[] (street without its type), :postcode text[] (the
-- typed digits), :city text[] (norm_city), :dept text[] (first two digits typed); :plan_mode:
-- the plan_cache_mode to restore once the statement has been planned (a batch: geocoder.py
-- asks for custom plans first), or NULL.
--
-- 1. Commune candidates, each with a score: the name as typed (commune, former commune, or the
--    city of an arrondissement), the communes of the postcode, of a postcode one digit away,
--    of the postal département, then of the country (names of about the same length sharing
--    the first or last three letters); a misspelt name counts only within one edit (two: a swap of letters, or a name of 9 letters
--    or more; three: 15 or more). Kept: the best candidate and those within 0.03 of it. Found
--    once per distinct (postcode, commune) of the batch ("places").
-- 2. Street within those communes: normalised name, then the name without its type, then the
--    best trigram similarity or edit distance among the commune's own streets (never a national
--    search; the streets a slip or two away first); a misspelt commune name needs its street
--    exactly.
-- 3. Door: exact number and suffix, else interpolated between same-side neighbours.
-- A best street found in two cities with close scores (namesakes typed with no postcode) is an
-- ambiguity, unless only one of them holds the number typed: no door, no commune.
-- With no street found, the commune is answered only when it is certain (its exact name and a
-- postcode that agrees, or no street typed): a street missing from a guessed commune is a sign
-- the commune is another one, whose doors are not loaded.
WITH restore AS MATERIALIZED (
    SELECT CASE WHEN CAST(:plan_mode AS text) IS NOT NULL
                THEN set_config('plan_cache_mode', CAST(:plan_mode AS text), true) END AS mode
),
-- The binds. For one address geocoder.py makes this CTE MATERIALIZED: the planner then does
-- not see the arrays' size, its custom and generic plans cost the same, and PostgreSQL keeps
-- the generic plan after five runs (no planning per address, no setting to change). A batch
-- sees its size (custom plans, see app.db.custom_plans).
arrays AS (
    SELECT CAST(:idx AS int[]) AS idx, CAST(:num AS int[]) AS num, CAST(:suf AS text[]) AS suf,
           CAST(:suf_alt AS text[]) AS suf_alt, CAST(:street AS text[]) AS street,
           CAST(:core AS text[]) AS core, CAST(:postcode AS text[]) AS postcode,
           CAST(:city AS text[]) AS city, CAST(:dept AS text[]) AS dept
),
input AS (
    SELECT t.idx, t.num,
           nullif(t.suf, '') AS suf, nullif(t.suf_alt, '') AS suf_alt,
           coalesce(t.street, '') AS street_norm, coalesce(t.core, '') AS street_core,
           nullif(t.postcode, '') AS postcode, nullif(t.city, '') AS city_norm,
           nullif(t.dept, '') AS dept,
           -- one number per distinct (postcode, commune) typed
           dense_rank() OVER (ORDER BY nullif(t.postcode, ''), nullif(t.city, '')) AS place,
           -- edits within which a street name scores >= 0.75 by edits alone (street_fuzzy):
           -- the whole name (1 - e / length), the name without its type (0.95 (1 - e / length),
           -- times 0.9 when a type was typed)
           least(3, floor(0.25 * greatest(length(coalesce(t.street, '')), 4)))::int AS near_edits,
           least(2, floor(CASE WHEN coalesce(t.core, '') = coalesce(t.street, '')
                               THEN 1 - 0.75 / 0.95 ELSE 1 - 0.75 / (0.95 * 0.9) END
                          * greatest(length(coalesce(t.core, '')), 4)))::int AS near_core_edits
    FROM arrays a, unnest(a.idx, a.num, a.suf, a.suf_alt, a.street, a.core, a.postcode, a.city,
                          a.dept) AS t(idx, num, suf, suf_alt, street, core, postcode, city, dept)
),
-- The communes depend only on the postcode and the commune typed: they are found once per
-- distinct pair of the batch ("places"; an import holds many supporters of the same communes).
places AS (
    SELECT DISTINCT ON (place) place, postcode, city_norm, dept FROM input ORDER BY place
),
-- the name exactly: commune, former commune, or the city of an arrondissement ("Paris").
-- (OFFSET 0 keeps each lookup a probe of its index, per address, whatever the batch size.)
by_name AS (
    SELECT i.place, c.code_insee, c.code_postal, c.nom_commune, c.city_code, c.dept, c.ancienne
    FROM places i CROSS JOIN LATERAL (
        SELECT c.*, '' AS ancienne FROM geocode_commune c WHERE c.commune_norm = i.city_norm
        UNION
        SELECT c.*, '' FROM geocode_commune c WHERE c.city_norm = i.city_norm
        UNION
        SELECT c.*, c.nom_ancienne FROM geocode_commune c
        WHERE c.ancienne_norm = i.city_norm AND c.ancienne_norm <> ''
        OFFSET 0) c
    WHERE i.city_norm IS NOT NULL
),
named_ok AS (
    -- a postcode typed that is not the commune's, one digit away (wrong, missing, two swapped)
    -- nor of its département says the name is a namesake elsewhere: left out
    SELECT * FROM (
        SELECT b.place, b.code_insee, b.nom_commune, b.city_code, b.ancienne, true AS exact,
               CASE WHEN i.postcode IS NULL THEN 0.95
                    WHEN b.code_postal = i.postcode THEN 1.0
                    -- a BAL gives no postcode: the typed one's département is all we can check
                    WHEN b.code_postal = '' AND b.dept = i.dept THEN 0.97
                    WHEN b.code_postal <> '' AND (
                         levenshtein_less_equal(b.code_postal, i.postcode, 2) <= 1
                         OR (levenshtein_less_equal(b.code_postal, i.postcode, 2) = 2
                             AND porte_letters(b.code_postal) = porte_letters(i.postcode)))
                         THEN 0.96
                    WHEN b.dept = i.dept OR b.code_postal = '' THEN 0.95 END AS cscore
        FROM by_name b JOIN places i USING (place)) x
    WHERE cscore IS NOT NULL
),
named AS (SELECT DISTINCT place FROM named_ok),
-- communes of the typed postcode (names not found as typed)
at_postcode AS (
    SELECT i.place, c.*, 3 AS pcm
    FROM places i CROSS JOIN LATERAL (
        SELECT * FROM geocode_commune c WHERE c.code_postal = i.postcode OFFSET 0) c
    WHERE i.place NOT IN (SELECT place FROM named)
),
postcode_fits_one AS (
    -- rows whose typed postcode has a commune one edit from the name typed: a commune of a
    -- postcode one digit away would score at most 0.96 of it, below the 0.03 kept (see
    -- communes), so those postcodes are not looked at
    SELECT DISTINCT o.place FROM at_postcode o JOIN places i USING (place)
    WHERE least(CASE WHEN o.city_norm <> '' THEN levenshtein_less_equal(o.city_norm, i.city_norm, 1) END,
                CASE WHEN o.commune_norm <> ''
                     THEN levenshtein_less_equal(o.commune_norm, i.city_norm, 1) END,
                CASE WHEN o.ancienne_norm <> ''
                     THEN levenshtein_less_equal(o.ancienne_norm, i.city_norm, 1) END) <= 1
),
near AS (
    -- postcodes one digit away from a typed one, for names not found as typed
    SELECT DISTINCT i.place, v.pc
    FROM places i CROSS JOIN LATERAL (
        SELECT overlay(i.postcode PLACING d::text FROM p FOR 1) AS pc  -- a digit wrong
        FROM generate_series(1, 5) p, generate_series(0, 9) d WHERE length(i.postcode) = 5
        UNION ALL
        SELECT overlay(i.postcode PLACING substr(i.postcode, p + 1, 1)  -- two swapped
                       || substr(i.postcode, p, 1) FROM p FOR 2)
        FROM generate_series(1, 4) p WHERE length(i.postcode) = 5
        UNION ALL
        SELECT overlay(i.postcode PLACING d::text FROM p FOR 0)  -- a digit missing
        FROM generate_series(1, 5) p, generate_series(0, 9) d WHERE length(i.postcode) = 4) v
    WHERE i.city_norm IS NOT NULL AND v.pc <> i.postcode AND i.place NOT IN (SELECT place FROM named)
      AND i.place NOT IN (SELECT place FROM postcode_fits_one)
),
-- other communes, first those of the typed postcode and of a postcode one digit away; with a
-- name typed, only those with a name within three edits of it (the most fuzzy accepts)
by_postcode AS (
    SELECT o.* FROM at_postcode o JOIN places i USING (place)
    WHERE i.city_norm IS NULL
       OR least(levenshtein_less_equal(o.city_norm, i.city_norm, 3),
                levenshtein_less_equal(o.commune_norm, i.city_norm, 3),
                CASE WHEN o.ancienne_norm <> ''
                     THEN levenshtein_less_equal(o.ancienne_norm, i.city_norm, 3) END) <= 3
    UNION ALL
    SELECT n.place, c.*, 2
    FROM near n JOIN places i USING (place) CROSS JOIN LATERAL (
        SELECT * FROM geocode_commune c WHERE c.code_postal = n.pc
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                    levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                    CASE WHEN c.ancienne_norm <> ''
                         THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        OFFSET 0) c
),
postcode_fits AS (
    -- rows whose (near) postcode has a commune within two edits of the name typed
    SELECT DISTINCT o.place FROM by_postcode o JOIN places i USING (place)
    WHERE least(levenshtein_less_equal(o.city_norm, i.city_norm, 2),
                levenshtein_less_equal(o.commune_norm, i.city_norm, 2),
                CASE WHEN o.ancienne_norm <> ''
                     THEN levenshtein_less_equal(o.ancienne_norm, i.city_norm, 2) END) <= 2
),
-- then, when the postcode does not help, the communes of the postal département (a misspelt
-- name), or with no postcode at all names of the country that start or end alike, or have the
-- same letters (two swapped)
others AS (
    SELECT * FROM by_postcode
    UNION ALL
    SELECT i.place, c.*, 1
    FROM places i CROSS JOIN LATERAL (
        SELECT * FROM geocode_commune c WHERE c.dept = i.dept AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        OFFSET 0) c
    WHERE i.city_norm IS NOT NULL AND i.place NOT IN (SELECT place FROM named)
      AND i.place NOT IN (SELECT place FROM postcode_fits)
    UNION ALL
    SELECT i.place, c.*, 0
    FROM places i CROSS JOIN LATERAL (
        SELECT * FROM geocode_commune c
        WHERE left(c.city_norm, 3) = left(i.city_norm, 3)
          AND length(c.city_norm) BETWEEN length(i.city_norm) - 3 AND length(i.city_norm) + 3
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        UNION
        SELECT * FROM geocode_commune c
        WHERE right(c.city_norm, 3) = right(i.city_norm, 3)
          AND length(c.city_norm) BETWEEN length(i.city_norm) - 3 AND length(i.city_norm) + 3
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        UNION
        SELECT * FROM geocode_commune c
        WHERE left(c.city_norm, 2) = left(i.city_norm, 2)
          AND right(c.city_norm, 2) = right(i.city_norm, 2) AND length(i.city_norm) <= 7
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        UNION
        SELECT * FROM geocode_commune c
        WHERE porte_letters(c.city_norm) = porte_letters(i.city_norm)
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        UNION
        SELECT * FROM geocode_commune c
        WHERE left(c.ancienne_norm, 3) = left(i.city_norm, 3) AND c.ancienne_norm <> ''
          AND length(c.ancienne_norm) BETWEEN length(i.city_norm) - 3
                                          AND length(i.city_norm) + 3
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        UNION
        SELECT * FROM geocode_commune c
        WHERE right(c.ancienne_norm, 3) = right(i.city_norm, 3) AND c.ancienne_norm <> ''
          AND length(c.ancienne_norm) BETWEEN length(i.city_norm) - 3
                                          AND length(i.city_norm) + 3
          AND least(levenshtein_less_equal(c.city_norm, i.city_norm, 3),
                        levenshtein_less_equal(c.commune_norm, i.city_norm, 3),
                        CASE WHEN c.ancienne_norm <> ''
                             THEN levenshtein_less_equal(c.ancienne_norm, i.city_norm, 3) END) <= 3
        OFFSET 0) c
    WHERE i.dept IS NULL AND i.city_norm IS NOT NULL AND i.place NOT IN (SELECT place FROM named)
),
fuzzy AS (
    -- edits between the typed name and each name of the commune (its own, its city's, former)
    SELECT o.place, o.code_insee, o.code_postal, o.nom_commune, o.city_code, o.pcm,
           CASE WHEN n.former THEN o.nom_ancienne ELSE '' END AS ancienne,
           levenshtein_less_equal(n.name, i.city_norm, 3) AS e,
           length(i.city_norm) AS len, n.name, i.city_norm
    FROM others o JOIN places i USING (place)
    CROSS JOIN LATERAL (VALUES (o.commune_norm, false), (o.city_norm, false),
                               (o.ancienne_norm, true)) AS n(name, former)
    WHERE n.name <> '' AND abs(length(n.name) - length(i.city_norm)) <= 3
),
candidates AS (
    SELECT * FROM named_ok
    UNION ALL
    -- a commune of the postcode, no name typed
    SELECT o.place, o.code_insee, o.nom_commune, o.city_code, '', false, 0.9
    FROM others o JOIN places i USING (place)
    WHERE i.city_norm IS NULL AND o.pcm = 3
    UNION ALL
    -- a name one edit away (two: a swap, or 9 letters or more; three: 15 or more)
    SELECT f.place, f.code_insee, f.nom_commune, f.city_code, f.ancienne, false,
           (0.8 + 0.15 * (1 - f.e::float8 / greatest(f.len, 1)))
           * CASE f.pcm WHEN 3 THEN 1.0 WHEN 2 THEN 0.96 ELSE 0.95 END
    FROM fuzzy f
    WHERE f.e = 1
       OR (f.e = 2 AND (f.len >= 9 OR porte_letters(f.name) = porte_letters(f.city_norm)))
       OR (f.e = 3 AND f.len >= 15)
),
place_communes AS (
    -- per commune its best reading; kept when within 0.03 of the best commune
    SELECT place, code_insee, nom_commune, city_code, ancienne, exact, cscore FROM (
        SELECT DISTINCT ON (place, code_insee) *, max(cscore) OVER (PARTITION BY place) AS best
        FROM candidates ORDER BY place, code_insee, cscore DESC, exact DESC, ancienne DESC) x
    WHERE cscore >= best - 0.03
),
communes AS (
    SELECT i.idx, c.code_insee, c.nom_commune, c.city_code, c.ancienne, c.exact, c.cscore
    FROM place_communes c JOIN input i USING (place)
),
street_exact AS (
    SELECT c.idx, s.code_insee, s.nom_voie, s.n, c.nom_commune, c.city_code, c.ancienne,
           c.cscore,
           CASE WHEN s.voie_norm = i.street_norm THEN 1.0
                WHEN i.street_core = i.street_norm THEN 0.95  -- no street type typed
                ELSE 0.9 END AS sim                           -- another street type typed
    FROM communes c JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT * FROM geocode_street s
        WHERE s.code_insee = c.code_insee AND s.voie_norm = i.street_norm
        UNION
        SELECT * FROM geocode_street s
        WHERE s.code_insee = c.code_insee AND s.voie_core = i.street_core
        OFFSET 0) s
    WHERE i.street_norm <> ''
      -- a misspelt commune needs its street exactly (or only its type left out)
      AND (c.exact OR s.voie_norm = i.street_norm OR i.street_core = i.street_norm)
),
street_fuzzy AS (
    -- only rows without an exact street: the best match among each commune's streets. Scored
    -- on the whole name by trigrams and by edits (short names: "le Clps" for "le Clos" share
    -- few trigrams), and on the name without its type likewise, worth less when a type was
    -- typed. Streets a slip or two away (scoring >= 0.75 by edits alone) are scored first and
    -- the best of them taken; only when there is none is every street of the commune scored
    -- (trigrams cost ~5 us a street: 15 ms in a city of 3,000 streets).
    SELECT c.idx, f.code_insee, f.nom_voie, f.n, c.nom_commune, c.city_code, c.ancienne,
           c.cscore, f.sim
    FROM communes c JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        (SELECT s.code_insee, s.nom_voie, s.n,
               greatest(similarity(s.voie_norm, i.street_norm),
                         CASE WHEN levenshtein_less_equal(s.voie_norm, i.street_norm, 3) <= 3
                              THEN 1 - levenshtein_less_equal(s.voie_norm, i.street_norm, 3)
                                       ::float8 / greatest(length(i.street_norm), 4)
                              ELSE 0 END,
                         CASE WHEN i.street_core = i.street_norm THEN 1 ELSE 0.9 END * greatest(
                             similarity(s.voie_core, i.street_core),
                             CASE WHEN levenshtein_less_equal(s.voie_core, i.street_core, 2) <= 2
                                  THEN 0.95 * (1 - levenshtein_less_equal(s.voie_core,
                                                                          i.street_core, 2)
                                                   ::float8 / greatest(length(i.street_core), 4))
                                  ELSE 0 END)) AS sim
         FROM geocode_street s
         WHERE s.code_insee = c.code_insee
           AND (levenshtein_less_equal(s.voie_norm, i.street_norm, i.near_edits)
                    <= i.near_edits
                OR levenshtein_less_equal(s.voie_core, i.street_core, i.near_core_edits)
                    <= i.near_core_edits)
         ORDER BY sim DESC, s.n DESC LIMIT 1)
        UNION ALL
        (SELECT s.code_insee, s.nom_voie, s.n,
               greatest(similarity(s.voie_norm, i.street_norm),
                         CASE WHEN levenshtein_less_equal(s.voie_norm, i.street_norm, 3) <= 3
                              THEN 1 - levenshtein_less_equal(s.voie_norm, i.street_norm, 3)
                                       ::float8 / greatest(length(i.street_norm), 4)
                              ELSE 0 END,
                         CASE WHEN i.street_core = i.street_norm THEN 1 ELSE 0.9 END * greatest(
                             similarity(s.voie_core, i.street_core),
                             CASE WHEN levenshtein_less_equal(s.voie_core, i.street_core, 2) <= 2
                                  THEN 0.95 * (1 - levenshtein_less_equal(s.voie_core,
                                                                          i.street_core, 2)
                                                   ::float8 / greatest(length(i.street_core), 4))
                                  ELSE 0 END)) AS sim
         FROM geocode_street s
         WHERE s.code_insee = c.code_insee
         ORDER BY sim DESC, s.n DESC LIMIT 1)
        LIMIT 1) f
    WHERE i.street_norm <> '' AND f.sim >= 0.45 AND c.exact
      AND c.idx NOT IN (SELECT idx FROM street_exact)
),
street_all AS (
    SELECT *, sim * cscore AS total,
           max(sim * cscore) OVER (PARTITION BY idx) AS best,
           max(sim * cscore) OVER (PARTITION BY idx, city_code) AS city_best
    FROM (SELECT * FROM street_exact UNION ALL SELECT * FROM street_fuzzy) x
),
close AS (
    -- streets almost as good as the best one, in one city or several
    SELECT * FROM street_all WHERE total >= best - 0.02
),
close_doors AS (
    -- the cities among them that hold the number typed
    SELECT DISTINCT c.idx, c.city_code
    FROM close c JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT 1 FROM address a WHERE a.code_insee = c.code_insee AND a.nom_voie = c.nom_voie
                                  AND a.numero = i.num
        LIMIT 1) a
),
street_city AS (
    -- one city: that one (Paris: a street may cross arrondissements); several (namesakes, no
    -- postcode): the only one holding the door typed, else none can be told apart
    SELECT c.idx, CASE WHEN c.n = 1 THEN c.city_code WHEN d.n = 1 THEN d.city_code END AS city_code
    FROM (SELECT idx, count(DISTINCT city_code) AS n, min(city_code) AS city_code
          FROM close GROUP BY idx) c
    LEFT JOIN (SELECT idx, count(*) AS n, min(city_code) AS city_code
               FROM close_doors GROUP BY idx) d USING (idx)
),
ambiguous AS (SELECT idx FROM street_city WHERE city_code IS NULL),
street AS (
    -- the city's best street first; streets almost as good follow (the door decides: "22 Grand
    -- Champ" is at the Allée du Grand Champ when only it has a 22)
    SELECT a.idx, a.code_insee, a.nom_voie, a.n, a.nom_commune, a.ancienne, a.cscore, a.sim,
           row_number() OVER (PARTITION BY a.idx ORDER BY a.total DESC, a.n DESC, a.code_insee)
               AS rk
    FROM street_all a JOIN street_city s USING (idx, city_code)
    WHERE a.total >= a.city_best - 0.06
),
door AS (
    SELECT DISTINCT ON (st.idx) st.idx, a.id, a.lon, a.lat, a.numero, a.suffixe,
           a.code_insee, a.nom_voie, a.nom_commune, st.sim, st.cscore,
           CASE WHEN lower(coalesce(a.suffixe, '')) = coalesce(i.suf, '') THEN 1.0
                WHEN lower(coalesce(a.suffixe, '')) = i.suf_alt THEN 0.98
                WHEN i.suf IS NOT NULL AND coalesce(a.suffixe, '') = '' THEN 0.9
                ELSE 0.85 END AS nscore
    FROM street st JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT * FROM address a WHERE a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
                                  AND a.numero = i.num
        OFFSET 0) a
    ORDER BY st.idx, st.rk,
             (st.ancienne <> '' AND a.nom_ancienne_commune = st.ancienne) DESC, nscore DESC, a.id
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
    -- no street: the commune when the candidates are one city (arrondissements: the first),
    -- and certain when a street was typed but not found
    SELECT c.idx, min(c.code_insee) AS code_insee, min(c.nom_commune) AS nom_commune,
           max(c.cscore) AS cscore, count(DISTINCT c.city_code) AS n_cities,
           bool_and(i.street_norm = '' OR (c.exact AND c.cscore >= 0.97)) AS certain
    FROM communes c JOIN input i USING (idx) GROUP BY c.idx
)
SELECT i.idx,
       CASE WHEN d.idx IS NOT NULL THEN 'housenumber'
            WHEN p.idx IS NOT NULL THEN 'interpolated'
            WHEN st.idx IS NOT NULL THEN 'street'
            WHEN cm.n_cities = 1 AND cm.certain AND amb.idx IS NULL THEN 'commune'
            ELSE 'none' END AS level,
       round(CASE WHEN d.idx IS NOT NULL THEN d.sim * d.nscore * d.cscore
                  WHEN p.idx IS NOT NULL THEN st.sim * 0.7 * st.cscore
                  WHEN st.idx IS NOT NULL THEN st.sim * 0.5 * st.cscore
                  WHEN cm.n_cities = 1 AND cm.certain AND amb.idx IS NULL THEN 0.2 * cm.cscore
                  ELSE 0 END::numeric, 3)::float8 AS score,
       coalesce(d.lon, p.lon, sp.lon) AS lon,
       coalesce(d.lat, p.lat, sp.lat) AS lat,
       d.id AS address_id,
       d.numero AS numero,
       d.suffixe AS suffixe,
       CASE WHEN d.idx IS NOT NULL THEN d.code_insee WHEN st.idx IS NOT NULL THEN st.code_insee
            WHEN cm.n_cities = 1 AND cm.certain AND amb.idx IS NULL THEN cm.code_insee END AS code_insee,
       CASE WHEN d.idx IS NOT NULL THEN d.nom_commune WHEN st.idx IS NOT NULL THEN st.nom_commune
            WHEN cm.n_cities = 1 AND cm.certain AND amb.idx IS NULL THEN cm.nom_commune END AS nom_commune,
       coalesce(d.nom_voie, st.nom_voie) AS nom_voie,
       i.street_norm = '' AS no_street,
       i.num IS NULL AS no_number,
       cm.n_cities,
       -- the commune is known but not the street: say so when its doors are the demo's
       CASE WHEN d.idx IS NULL AND p.idx IS NULL AND st.idx IS NULL AND cm.n_cities = 1
                 AND cm.certain AND amb.idx IS NULL
            THEN (SELECT a.source = 'synthetic' FROM address a
                  WHERE a.code_insee = cm.code_insee LIMIT 1) END AS synthetic_doors,
       amb.idx IS NOT NULL AS ambiguous,
       cm.idx IS NOT NULL AS candidates
FROM input i
LEFT JOIN street st ON st.idx = i.idx AND st.rk = 1
LEFT JOIN door d ON d.idx = i.idx
LEFT JOIN interpolated p ON p.idx = i.idx
LEFT JOIN street_point sp ON sp.idx = i.idx
LEFT JOIN commune_only cm ON cm.idx = i.idx
LEFT JOIN ambiguous amb ON amb.idx = i.idx
CROSS JOIN restore
ORDER BY i.idx
