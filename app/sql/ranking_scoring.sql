-- One weighted sum of the stored z-scores, ranked, in ONE statement: a change of weights costs
-- this and nothing else. Also the per-commune summary the district tiles draw at low zoom.
--
-- Binds: :campaign_id uuid, :snapshot_id bigint, :scoring_id bigint, :k int,
--        :w float8[] (one weight per factor, in the catalogue's order: 0 for the others).
--
-- score = damping x sum(weight x z); rank 1 = highest score (ties broken by district code).
-- The sum is written out over the 24 positions: plain arithmetic per district.
-- Commune summary: mean score, best rank, districts; a count is summed only when every district
-- of the commune shows it (>= k, not suppressed): nothing hidden can be recovered by subtraction.
WITH
w AS (SELECT CAST(:w AS double precision[]) AS w),
scored AS (
    SELECT v.district_code, v.commune_code, v.doors, v.households, v.supporters,
           v.visited_doors,
           v.damping * (
               v.z[1] * w[1] + v.z[2] * w[2] + v.z[3] * w[3] + v.z[4] * w[4]
               + v.z[5] * w[5] + v.z[6] * w[6] + v.z[7] * w[7] + v.z[8] * w[8]
               + v.z[9] * w[9] + v.z[10] * w[10] + v.z[11] * w[11] + v.z[12] * w[12]
               + v.z[13] * w[13] + v.z[14] * w[14] + v.z[15] * w[15] + v.z[16] * w[16]
               + v.z[17] * w[17] + v.z[18] * w[18] + v.z[19] * w[19] + v.z[20] * w[20]
               + v.z[21] * w[21] + v.z[22] * w[22] + v.z[23] * w[23] + v.z[24] * w[24]
           ) AS score
    FROM ranking_value v CROSS JOIN w
    WHERE v.campaign_id = :campaign_id AND v.snapshot_id = :snapshot_id
),
ranked AS (
    SELECT s.*, row_number() OVER (ORDER BY s.score DESC, s.district_code) AS rank
    FROM scored s
),
districts AS (
    INSERT INTO ranking_score (campaign_id, scoring_id, rank, district_code, score)
    SELECT :campaign_id, :scoring_id, rank, district_code, score FROM ranked
    RETURNING 1
),
communes AS (
    INSERT INTO ranking_commune_score (campaign_id, scoring_id, commune_code, score, best_rank,
                                       districts, doors, households, supporters, visited_doors)
    SELECT :campaign_id, :scoring_id, commune_code, avg(score), min(rank), count(*),
           CASE WHEN bool_and(doors >= :k) THEN sum(doors) END,
           CASE WHEN bool_and(households >= :k) THEN sum(households) END,
           CASE WHEN bool_and(supporters IS NOT NULL) THEN sum(supporters) END,
           CASE WHEN bool_and(visited_doors IS NOT NULL) THEN sum(visited_doors) END
    FROM ranked
    WHERE commune_code IS NOT NULL
    GROUP BY commune_code
    RETURNING 1
)
SELECT (SELECT count(*) FROM districts)::int AS districts,
       (SELECT count(*) FROM communes)::int AS communes
