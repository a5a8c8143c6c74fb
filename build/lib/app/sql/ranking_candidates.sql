-- /*CANDIDATES*/ fragment: votes per candidate (or list) of the chosen election and, when a swing
-- is computed, of its reference election (NULL :swing_from_id matches nothing).
SELECT c.election_id, c.district_code, c.nuance, c.label, c.voix
FROM election_candidate_result c
WHERE c.election_id IN (:election_id, CAST(:swing_from_id AS int))
  AND CAST(:side AS text[]) IS NOT NULL
