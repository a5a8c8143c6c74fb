-- One weighted sum of the stored z-scores, ranked, in ONE statement: a change of weights costs
-- this and nothing else. Also the per-commune summary the district tiles draw at low zoom.
--
-- Binds: :campaign_id uuid, :snapshot_id bigint, :scoring_id bigint, :k int,
--        :positions int[] and :weights float8[] (the weighted factors' positions in the arrays,
--        app/services/ranking/factors.py, and their weights).
--
-- score = damping x sum(weight x z); rank 1 = highest score (ties broken by district code).
-- Commune summary: mean score, best rank, districts; a count is summed only when every district
-- of the commune shows it (>= k, not suppressed): nothing hidden can be recovered by subtraction.
WITH
w AS (
    SELECT x.i, x.w
    FROM unnest(CAST(:positions AS int[]), CAST(:weights AS double precision[])) AS x(i, w)
),
scored AS (
    SELECT v.district_code,
           v.damping * coalesce((SELECT sum(w.w * v.z[w.i]) FROM w), 0) AS score
    FROM ranking_value v
    WHERE v.campaign_id = :campaign_id AND v.snapshot_id = :snapshot_id
),
ranked AS (
    INSERT INTO ranking_score (campaign_id, scoring_id, rank, district_code, score)
    SELECT :campaign_id, :scoring_id,
           row_number() OVER (ORDER BY score DESC, district_code), district_code, score
    FROM scored
    RETURNING district_code, rank, score
),
communes AS (
    INSERT INTO ranking_commune_score (campaign_id, scoring_id, commune_code, score, best_rank,
                                       districts, doors, households, supporters, visited_doors)
    SELECT :campaign_id, :scoring_id, d.commune_code, avg(r.score), min(r.rank), count(*),
           CASE WHEN bool_and(v.doors >= :k) THEN sum(v.doors) END,
           CASE WHEN bool_and(v.households >= :k) THEN sum(v.households) END,
           CASE WHEN bool_and(v.supporters IS NOT NULL) THEN sum(v.supporters) END,
           CASE WHEN bool_and(v.visited_doors IS NOT NULL) THEN sum(v.visited_doors) END
    FROM ranked r
    JOIN district d ON d.code = r.district_code
    JOIN ranking_value v ON v.campaign_id = :campaign_id AND v.snapshot_id = :snapshot_id
                        AND v.district_code = r.district_code
    WHERE d.commune_code IS NOT NULL
    GROUP BY d.commune_code
    RETURNING 1
)
SELECT (SELECT count(*) FROM ranked)::int AS districts, (SELECT count(*) FROM communes)::int AS communes
