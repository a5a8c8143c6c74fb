-- Consented, active, located supporters per district (one district each): the campaign's
-- district partition of supporter counts, raw (app/services/people/supporters/aggregates.py
-- protects it; the ranking gets the published counts only). Bind: :campaign_id uuid.
-- Each placed supporter carries in clear the codes of the polling station and of the IRIS that
-- cover its point (its exact door is encrypted, see app/services/people/supporters/cells.py); it
-- counts in the smaller of the two codes, as a door counts in the smallest district covering it.
SELECT least(s.bv_code, s.iris_code) AS district_code, count(*) AS n
FROM supporter s
WHERE s.campaign_id = :campaign_id AND s.status = 'active' AND s.tile_id IS NOT NULL
  AND coalesce(s.bv_code, s.iris_code) IS NOT NULL
GROUP BY 1
