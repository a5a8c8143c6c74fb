-- The campaign's own factors (consented supporters, coverage of the current round) and the
-- coverage damping, for every district of a ranking snapshot, in ONE statement; returns their
-- mean, standard deviation and count. Run after ranking_values.sql, and alone when only the
-- campaign's supporters or visits changed (the public-data factors are left as they are).
--
-- Binds: :campaign_id uuid, :snapshot_id bigint, :k int (suppression threshold),
--        :has_round boolean (the campaign has a canvass round), :si / :ci int (positions of
--        the supporters and coverage factors in the value arrays, app/services/ranking/factors.py),
--        :supporters boolean (count the supporters again; false: keep the stored ones, when only
--        visits changed), :published_supporters and :published_visited jsonb ({district code:
--        count}).
--
-- Supporters and visited doors enter as PUBLISHED counts only (app/disclosure/, computed by
-- app/services/people/supporters/aggregates.py and app/services/field/progress.py, the same
-- numbers analysts read there): a district whose count is hidden (below k, or hidden with one so
-- that it cannot be worked out by subtraction) is absent from the binds, scored as 0 and stored
-- blank, flagged suppressed. No raw count is read here.
WITH
sup AS (
    SELECT key AS district_code, value::bigint AS n
    FROM jsonb_each_text(CAST(:published_supporters AS jsonb))
),
visited AS (
    SELECT key AS district_code, value::bigint AS n
    FROM jsonb_each_text(CAST(:published_visited AS jsonb))
    WHERE :has_round
),
val AS (
    SELECT r.district_code,
           coalesce(sup.n, 0) AS sup_n,
           CASE WHEN :has_round THEN coalesce(visited.n, 0) END AS vis_n,
           CASE WHEN NOT :supporters THEN r.v[:si]
                WHEN coalesce(sup.n, 0) >= :k THEN sup.n ELSE 0 END::double precision AS s,
           CASE WHEN NOT :has_round OR coalesce(r.doors, 0) = 0 THEN NULL
                WHEN coalesce(visited.n, 0) >= :k THEN visited.n::double precision / r.doors
                ELSE 0 END AS c
    FROM ranking_value r
    LEFT JOIN sup ON sup.district_code = r.district_code
    LEFT JOIN visited ON visited.district_code = r.district_code
    WHERE r.campaign_id = :campaign_id AND r.snapshot_id = :snapshot_id
),
stats AS (
    SELECT avg(s) AS s_mean, stddev_pop(s) AS s_sd, count(s)::int AS s_n,
           avg(c) AS c_mean, stddev_pop(c) AS c_sd, count(c)::int AS c_n
    FROM val
),
updated AS (
    UPDATE ranking_value r SET
        v[:si] = val.s,
        v[:ci] = val.c,
        z[:si] = porte_z(val.s, st.s_mean, st.s_sd),
        z[:ci] = porte_z(val.c, st.c_mean, st.c_sd),
        damping = 1 - coalesce(least(greatest(val.c, 0), 1), 0),
        supporters = CASE WHEN NOT :supporters THEN r.supporters
                          WHEN val.sup_n >= :k THEN val.sup_n END,
        supporters_suppressed = CASE WHEN NOT :supporters THEN r.supporters_suppressed
                                     ELSE val.sup_n < :k END,
        visited_doors = CASE WHEN val.vis_n >= :k THEN val.vis_n END,
        visited_doors_suppressed = coalesce(val.vis_n < :k, false)
    FROM val CROSS JOIN stats st
    WHERE r.campaign_id = :campaign_id AND r.snapshot_id = :snapshot_id
      AND r.district_code = val.district_code
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated)::int AS districts, st.*
FROM stats st
