-- /*CANDIDATES*/ fragment: votes per candidate (or list) of the chosen election.
SELECT c.district_code, c.nuance, c.label, c.voix
FROM election_candidate_result c
WHERE c.election_id = :election_id AND CAST(:side AS text[]) IS NOT NULL
