-- Reference election of the swing: another loaded election (:only, or any when NULL) where a
-- candidate of a district of the campaign's territory (:c) is ours by the same rule as
-- ranking_values.sql's side CTE (nuance or label equal to a token, or label containing a token
-- of 4+ letters). Elections loaded before the chosen one come first (the swing is measured from
-- an earlier election), then the most recently loaded.
SELECT e.id, e.name
FROM election e
WHERE e.id <> :chosen
  AND (CAST(:only AS int) IS NULL OR e.id = CAST(:only AS int))
  AND EXISTS (
      SELECT 1 FROM election_candidate_result c
      JOIN campaign_district cd ON cd.campaign_id = :c AND cd.district_code = c.district_code
      WHERE c.election_id = e.id
        AND (upper(c.nuance) = ANY (CAST(:side AS text[]))
             OR upper(c.label) = ANY (CAST(:side AS text[]))
             OR EXISTS (SELECT 1 FROM unnest(CAST(:side AS text[])) s(tok)
                        WHERE length(s.tok) >= 4 AND strpos(upper(c.label), s.tok) > 0))
  )
ORDER BY (e.loaded_at, e.id) < (SELECT x.loaded_at, x.id FROM election x WHERE x.id = :chosen)
             DESC,
         e.loaded_at DESC, e.id DESC
LIMIT 1
