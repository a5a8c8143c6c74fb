-- Record a batch of visits in one statement (set-based), idempotently.
-- Binds: :c campaign id, :ids uuid[], :doors bigint[], :outcomes text[], :flats text[],
-- :ats timestamptz[], :asgs uuid[] (requested assignment or NULL), :staff boolean (admin and
-- organiser may record on any door), :me the caller's account (NULL for invite sessions),
-- :my_assignment the invite's assignment (NULL for accounts), :invite the invite id, :skew interval.
-- Every input row comes back once, in input order, with its result: 'created',
-- 'already_recorded' or a rejection reason. The primary key (campaign_id, id) makes replays,
-- even concurrent ones, insert each visit exactly once (ON CONFLICT DO NOTHING).
WITH input AS (
    SELECT *
    FROM unnest(CAST(:ids AS uuid[]), CAST(:doors AS bigint[]), CAST(:outcomes AS text[]),
                CAST(:flats AS text[]), CAST(:ats AS timestamptz[]), CAST(:asgs AS uuid[]))
         WITH ORDINALITY AS i(id, address_id, outcome, flat, visited_at, asked_assignment, ord)
),
checked AS (
    SELECT i.*,
           r.id AS round_id,
           -- staff visits belong to an assignment only when they name one
           CASE WHEN :staff AND i.asked_assignment IS NULL THEN NULL
                ELSE ad.assignment_id END AS assignment_id,
           CASE
               WHEN e.id IS NOT NULL AND e.address_id = i.address_id
                    AND (:staff OR e.volunteer_user_id = :me OR e.invite_id = :invite)
                   THEN 'already_recorded'
               WHEN e.id IS NOT NULL THEN 'id_reused'
               WHEN a.id IS NULL THEN 'unknown_door'
               WHEN i.visited_at > now() + CAST(:skew AS interval) THEN 'in_future'
               WHEN r.id IS NULL THEN 'before_round'
               WHEN :staff AND i.asked_assignment IS NULL THEN NULL
               WHEN ad.assignment_id IS NULL THEN 'not_in_assignment'
               WHEN NOT ad.active THEN 'assignment_ended'
           END AS problem
    FROM input i
    -- LATERAL + LIMIT: always a primary-key probe per input row, never a scan of the
    -- campaign's visits (a hash join on stale statistics would grow with the visit table).
    LEFT JOIN LATERAL (
        SELECT v.id, v.address_id, v.volunteer_user_id, v.invite_id FROM visit v
        WHERE v.campaign_id = :c AND v.id = i.id LIMIT 1
    ) e ON true
    LEFT JOIN LATERAL (SELECT ad0.id FROM address ad0 WHERE ad0.id = i.address_id LIMIT 1) a ON true
    LEFT JOIN LATERAL (
        SELECT cr.id FROM canvass_round cr
        WHERE cr.campaign_id = :c AND cr.started_at <= i.visited_at + CAST(:skew AS interval)
        ORDER BY cr.number DESC LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT s.id AS assignment_id,
               (s.ended_at IS NULL AND s.starts_at <= now()
                AND (s.ends_at IS NULL OR s.ends_at > now())) AS active
        FROM assignment_door d
        JOIN assignment s ON s.campaign_id = d.campaign_id AND s.id = d.assignment_id
        WHERE d.campaign_id = :c AND d.address_id = i.address_id
          AND (i.asked_assignment IS NULL OR s.id = i.asked_assignment)
          AND (:staff OR s.volunteer_user_id = :me OR s.id = :my_assignment)
        ORDER BY 2 DESC, s.created_at DESC
        LIMIT 1
    ) ad ON true
),
inserted AS (
    INSERT INTO visit (campaign_id, id, address_id, assignment_id, round_id, outcome, flat,
                       visited_at, volunteer_user_id, invite_id)
    SELECT :c, id, address_id, assignment_id, round_id, outcome, flat, visited_at, :me, :invite
    FROM checked
    WHERE problem IS NULL
    ORDER BY id  -- one lock order for every batch: concurrent replays cannot deadlock
    ON CONFLICT (campaign_id, id) DO NOTHING
    RETURNING id
),
flagged AS (
    INSERT INTO door_flag (campaign_id, address_id, kind)
    SELECT DISTINCT :c, address_id, 'do_not_knock'
    FROM checked
    WHERE problem IS NULL AND outcome = 'do_not_knock'
    ORDER BY address_id
    -- a flag the public form had set is now the volunteer's: no longer revertible in bulk
    ON CONFLICT (campaign_id, address_id) DO UPDATE SET request_id = NULL
        WHERE door_flag.request_id IS NOT NULL
)
SELECT c.ord, c.id, c.address_id,
       CASE WHEN ins.id IS NOT NULL THEN 'created'
            WHEN c.problem IS NULL THEN 'already_recorded'
            ELSE c.problem END AS result
FROM checked c
LEFT JOIN inserted ins ON ins.id = c.id
ORDER BY c.ord
