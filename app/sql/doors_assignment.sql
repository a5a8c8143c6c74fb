-- The doors of one assignment in walking order, with their status (door_status(): f flagged,
-- v visited in the current round, p pending) and, when
-- the caller recorded one, the outcome of the caller's own latest visit in the current round.
-- Binds: :c campaign id, :a assignment id, :me caller's account (NULL for invite sessions),
-- :invite caller's invite (NULL for accounts), :staff (admin, organiser: anyone's outcome).
WITH cur AS (
    SELECT id, number FROM current_round(:c)
)
SELECT ad.seq, a.id, round(a.lon::numeric, 5)::float8 AS lon, round(a.lat::numeric, 5)::float8 AS lat,
       concat_ws(' ', a.numero::text, a.suffixe) AS num, a.nom_voie AS street,
       greatest(1, round(a.households))::int AS households,
       left(s.status, 1) AS status,
       (SELECT v.outcome FROM visit v
        WHERE v.campaign_id = :c AND v.round_id = (SELECT id FROM cur) AND v.address_id = a.id
          AND (:staff OR v.volunteer_user_id = :me OR v.invite_id = :invite)
        ORDER BY v.visited_at DESC LIMIT 1) AS own_outcome,
       (SELECT number FROM cur) AS round_number
FROM assignment_door ad
JOIN address a ON a.id = ad.address_id
CROSS JOIN LATERAL door_status(:c, a.id) s
WHERE ad.campaign_id = :c AND ad.assignment_id = :a
ORDER BY ad.seq
