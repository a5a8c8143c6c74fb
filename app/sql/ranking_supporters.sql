-- /*SUPPORTERS*/ fragment: consented, active, located supporters per district (one district each).
SELECT x.district_code, count(*) AS n
FROM (
    SELECT DISTINCT ON (s.id) s.id, d.code AS district_code
    FROM supporter s
    JOIN district d ON ST_Intersects(d.geom, s.geom)
    WHERE s.campaign_id = :campaign_id AND s.status = 'active' AND s.geom IS NOT NULL
    ORDER BY s.id, d.code
) x
GROUP BY x.district_code
