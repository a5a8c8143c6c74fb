-- /*ELECTION*/ fragment: turnout of the chosen election per district.
SELECT r.district_code, r.inscrits, r.abstentions, r.exprimes
FROM election_result r
WHERE r.election_id = :election_id
