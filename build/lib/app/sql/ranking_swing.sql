-- /*SWING*/ fragment: votes cast per district in the swing's reference (earlier) election.
SELECT r.district_code, r.exprimes
FROM election_result r
WHERE r.election_id = CAST(:swing_from_id AS int)
