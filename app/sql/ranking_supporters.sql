-- Consented, active, located supporters per district (one district each): the campaign's
-- district partition of supporter counts, raw (app/services/people/supporters/aggregates.py
-- protects it; the ranking gets the published counts only). Bind: :campaign_id uuid.
-- A supporter placed on a door takes the door's district (indexed join); the others (geocoded to
-- a street or placed by hand, no door) are located by their point.
SELECT x.district_code, count(*) AS n
FROM (
    SELECT CASE
               WHEN s.address_id IS NOT NULL THEN dd.district_code
               ELSE (SELECT d.code FROM district d WHERE ST_Intersects(d.geom, s.geom)
                     ORDER BY d.code LIMIT 1)
           END AS district_code
    FROM supporter s
    LEFT JOIN door_district dd ON dd.address_id = s.address_id
    WHERE s.campaign_id = :campaign_id AND s.status = 'active' AND s.geom IS NOT NULL
) x
WHERE x.district_code IS NOT NULL
GROUP BY x.district_code
