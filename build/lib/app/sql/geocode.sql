-- Local geocoder: one set-based pass over a batch of parsed addresses (app/services/geocoder.py).
-- Binds (arrays of equal length): :idx int[], :num int[], :suf text[], :suf_alt text[],
-- :street text[], :postcode text[], :city text[]. One output row per input row.
-- Steps: commune (name, else postcode, else the postcode's département for doors without
-- postcodes) -> street (exact normalised name, else pg_trgm similarity within those communes)
-- -> door (exact number and suffix, else interpolated between same-side neighbours).
WITH input AS (
    -- street and city arrive normalised (app.services.geocoder.norm_name = porte_norm_name)
    SELECT t.idx, t.num,
           nullif(t.suf, '') AS suf, nullif(t.suf_alt, '') AS suf_alt,
           coalesce(t.street, '') AS street_norm,
           nullif(t.postcode, '') AS postcode,
           nullif(t.city, '') AS city_norm
    FROM unnest(CAST(:idx AS int[]), CAST(:num AS int[]), CAST(:suf AS text[]),
                CAST(:suf_alt AS text[]), CAST(:street AS text[]), CAST(:postcode AS text[]),
                CAST(:city AS text[])) AS t(idx, num, suf, suf_alt, street, postcode, city)
),
commune_candidates AS (
    -- by name; a postcode that agrees ranks first, one of another département last
    SELECT i.idx, c.code_insee, c.nom_commune,
           CASE WHEN c.code_postal = i.postcode THEN 1.0
                WHEN i.postcode IS NULL OR left(c.code_insee, 2) = left(i.postcode, 2) THEN 0.98
                ELSE 0.95 END AS cfac
    FROM input i JOIN geocode_commune c ON c.commune_norm = i.city_norm
    UNION ALL
    -- a misspelt name, within the postcode's département
    SELECT i.idx, c.code_insee, c.nom_commune, 0.8
    FROM input i JOIN geocode_commune c
      ON left(c.code_insee, 2) = left(i.postcode, 2) AND c.commune_norm % i.city_norm
    WHERE similarity(c.commune_norm, i.city_norm) >= 0.5
    UNION ALL
    -- by postcode (the name did not match or was not given)
    SELECT i.idx, c.code_insee, c.nom_commune, 0.75
    FROM input i JOIN geocode_commune c ON c.code_postal = i.postcode
    UNION ALL
    -- doors loaded without postcodes (BAL files) and no commune name given: communes of the
    -- postcode's département (the street must then match exactly or closely)
    SELECT i.idx, c.code_insee, c.nom_commune, 0.7
    FROM input i JOIN geocode_commune c
      ON c.code_postal = '' AND left(c.code_insee, 2) = left(i.postcode, 2)
    WHERE i.city_norm IS NULL
),
communes AS (
    SELECT DISTINCT ON (idx, code_insee) idx, code_insee, nom_commune, cfac
    FROM (SELECT *, max(cfac) OVER (PARTITION BY idx) AS best FROM commune_candidates) x
    WHERE cfac = best
    ORDER BY idx, code_insee
),
street_exact AS (
    SELECT DISTINCT ON (c.idx) c.idx, s.code_insee, s.nom_voie, c.nom_commune, c.cfac,
           1.0::real AS sim
    FROM communes c JOIN input i USING (idx)
    JOIN geocode_street s ON s.code_insee = c.code_insee AND s.voie_norm = i.street_norm
    WHERE i.street_norm <> ''
    ORDER BY c.idx, s.n DESC
),
street_fuzzy AS (
    -- only rows without an exact street: the best trigram match within their communes
    SELECT c.idx, f.code_insee, f.nom_voie, c.nom_commune, c.cfac, f.sim
    FROM communes c JOIN input i USING (idx)
    CROSS JOIN LATERAL (
        SELECT s.code_insee, s.nom_voie, similarity(s.voie_norm, i.street_norm) AS sim
        FROM geocode_street s
        WHERE s.code_insee = c.code_insee AND s.voie_norm % i.street_norm
        ORDER BY sim DESC, s.n DESC LIMIT 1) f
    WHERE i.street_norm <> '' AND c.idx NOT IN (SELECT idx FROM street_exact)
),
street AS (
    SELECT * FROM street_exact
    UNION ALL
    SELECT DISTINCT ON (idx) * FROM street_fuzzy WHERE sim >= 0.45 ORDER BY idx, sim DESC
),
door AS (
    SELECT DISTINCT ON (st.idx) st.idx, a.id, a.lon, a.lat, a.numero, a.suffixe,
           CASE WHEN lower(coalesce(a.suffixe, '')) = coalesce(i.suf, '') THEN 1.0
                WHEN lower(coalesce(a.suffixe, '')) = i.suf_alt THEN 0.98
                WHEN i.suf IS NOT NULL AND coalesce(a.suffixe, '') = '' THEN 0.9
                ELSE 0.85 END AS nscore
    FROM street st JOIN input i USING (idx)
    JOIN address a ON a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
                  AND a.numero = i.num
    ORDER BY st.idx, nscore DESC, a.id
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
    WHERE i.num IS NOT NULL
      AND st.idx NOT IN (SELECT idx FROM door)
      -- neighbours far apart say nothing about where the missing door is
      AND ST_DistanceSphere(lo.geom, hi.geom) <= 400
),
street_point AS (
    SELECT st.idx, avg(a.lon) AS lon, avg(a.lat) AS lat
    FROM street st
    JOIN address a ON a.code_insee = st.code_insee AND a.nom_voie = st.nom_voie
    WHERE st.idx NOT IN (SELECT idx FROM door)
      AND st.idx NOT IN (SELECT idx FROM interpolated)
    GROUP BY st.idx
)
SELECT i.idx,
       CASE WHEN d.idx IS NOT NULL THEN 'housenumber'
            WHEN p.idx IS NOT NULL THEN 'interpolated'
            WHEN st.idx IS NOT NULL THEN 'street'
            WHEN cm.idx IS NOT NULL THEN 'commune'
            ELSE 'none' END AS level,
       round(CASE WHEN d.idx IS NOT NULL THEN st.sim * d.nscore * st.cfac
                  WHEN p.idx IS NOT NULL THEN st.sim * 0.7 * st.cfac
                  WHEN st.idx IS NOT NULL THEN st.sim * 0.5 * st.cfac
                  WHEN cm.idx IS NOT NULL THEN 0.2 * cm.cfac
                  ELSE 0 END::numeric, 3)::float8 AS score,
       coalesce(d.lon, p.lon, sp.lon) AS lon,
       coalesce(d.lat, p.lat, sp.lat) AS lat,
       d.id AS address_id,
       d.numero AS numero,
       d.suffixe AS suffixe,
       coalesce(st.code_insee, cm.code_insee) AS code_insee,
       coalesce(st.nom_commune, cm.nom_commune) AS nom_commune,
       st.nom_voie,
       i.street_norm = '' AS no_street,
       i.num IS NULL AS no_number,
       cm.n_communes
FROM input i
LEFT JOIN street st USING (idx)
LEFT JOIN door d USING (idx)
LEFT JOIN interpolated p USING (idx)
LEFT JOIN street_point sp USING (idx)
LEFT JOIN (SELECT idx, min(code_insee) AS code_insee, min(nom_commune) AS nom_commune,
                  max(cfac) AS cfac, count(*) AS n_communes
           FROM communes GROUP BY idx) cm USING (idx)
ORDER BY i.idx
