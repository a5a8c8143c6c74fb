-- factors: population, households, poor_share, social_housing_share, owners_share, single_person_share, large_family_share, living_standard, age_18_24_share, age_25_39_share, age_40_54_share, age_55_64_share, age_65_79_share, age_80p_share, imputed_share, door_count, households_per_door, registered, abstention_rate, side_score, closeness, swing, supporters, coverage
--
-- Values and z-scores of the public-data factors for every district of a campaign's territory,
-- stored in ranking_value (one row per district) in ONE statement; returns the per-factor mean,
-- standard deviation and count. The last two factors (supporters, coverage) are left blank here
-- and filled by ranking_campaign_factors.sql.
--
-- Binds: :campaign_id uuid, :snapshot_id bigint, :election_id int (NULL = no election),
--        :side text[] (upper-case tokens; NULL = no side), :swing_from_id int (reference
--        election of the swing; NULL = no swing).
--
-- Rules (docs/ranking.md): population z-scores across the territory's districts; a missing value
-- counts as the mean (z = 0); a factor with no value or no spread gets z = 0 everywhere.
-- A candidate is "ours" when its nuance or label equals a side token, or its label contains a
-- token of 4+ letters (the same rule as ranking_swing_reference.sql).
-- Swing: change = 100 x (our share of votes cast in the chosen election - our share in the
-- reference election), in points (positive = our side gained); the factor is |change|.
WITH
dist AS (
    SELECT cd.district_code AS code
    FROM campaign_district cd
    WHERE cd.campaign_id = :campaign_id
),
el AS (
    SELECT r.district_code, r.inscrits, r.abstentions, r.exprimes
    FROM election_result r
    JOIN dist ON dist.code = r.district_code
    WHERE r.election_id = CAST(:election_id AS int)
),
ref_el AS (
    SELECT r.district_code, r.exprimes
    FROM election_result r
    JOIN dist ON dist.code = r.district_code
    WHERE r.election_id = CAST(:swing_from_id AS int)
),
side AS (
    SELECT c.district_code,
           sum(c.voix) FILTER (WHERE c.is_side AND c.election_id = :election_id) AS side_voix,
           max(c.voix) FILTER (WHERE NOT c.is_side AND c.election_id = :election_id)
               AS rival_voix,
           sum(c.voix) FILTER (WHERE c.is_side AND c.election_id = CAST(:swing_from_id AS int))
               AS ref_side_voix
    FROM (
        SELECT cd.election_id, cd.district_code, cd.voix,
               (upper(cd.nuance) = ANY (CAST(:side AS text[]))
                OR upper(cd.label) = ANY (CAST(:side AS text[]))
                OR EXISTS (SELECT 1 FROM unnest(CAST(:side AS text[])) s(tok)
                           WHERE length(s.tok) >= 4
                             AND strpos(upper(cd.label), s.tok) > 0)) AS is_side
        FROM election_candidate_result cd
        JOIN dist ON dist.code = cd.district_code
        WHERE cd.election_id IN (CAST(:election_id AS int), CAST(:swing_from_id AS int))
          AND CAST(:side AS text[]) IS NOT NULL
    ) c
    GROUP BY c.district_code
),
side_found AS (
    SELECT count(side_voix) > 0 AS found, count(ref_side_voix) > 0 AS ref_found FROM side
),
swing AS (
    SELECT el.district_code,
           100 * (coalesce(side.side_voix, 0)::double precision / nullif(el.exprimes, 0)
                  - coalesce(side.ref_side_voix, 0)::double precision
                    / nullif(ref_el.exprimes, 0)) AS change
    FROM el
    JOIN ref_el ON ref_el.district_code = el.district_code
    LEFT JOIN side ON side.district_code = el.district_code
    CROSS JOIN side_found sf
    WHERE sf.found AND sf.ref_found
),
raw AS (
    SELECT dist.code, p.ind, p.men, p.men_pauv, p.log_soc, p.doors, p.tiles,
           el.inscrits, el.abstentions, el.exprimes, swing.change AS swing_change,
           ARRAY[
               p.ind,
               p.men,
               p.men_pauv / nullif(p.men, 0),
               p.log_soc / nullif(p.log_total, 0),
               p.men_prop / nullif(p.men, 0),
               p.men_1ind / nullif(p.men, 0),
               p.men_5ind / nullif(p.men, 0),
               p.ind_snv / nullif(p.ind, 0),
               p.ind_18_24 / nullif(p.ind, 0),
               p.ind_25_39 / nullif(p.ind, 0),
               p.ind_40_54 / nullif(p.ind, 0),
               p.ind_55_64 / nullif(p.ind, 0),
               p.ind_65_79 / nullif(p.ind, 0),
               p.ind_80p / nullif(p.ind, 0),
               p.men_imputed / nullif(p.men, 0),
               p.doors::double precision,
               p.men / nullif(p.doors, 0),
               el.inscrits::double precision,
               el.abstentions::double precision / nullif(el.inscrits, 0),
               CASE WHEN sf.found THEN coalesce(side.side_voix, 0)::double precision
                                       / nullif(el.exprimes, 0) END,
               CASE WHEN sf.found THEN 1 - abs(coalesce(side.side_voix, 0)
                                               - coalesce(side.rival_voix, 0))::double precision
                                       / nullif(el.exprimes, 0) END,
               abs(swing.change)
           ]::double precision[] AS v
    FROM dist
    LEFT JOIN district_profile p ON p.district_code = dist.code
    LEFT JOIN el ON el.district_code = dist.code
    LEFT JOIN side ON side.district_code = dist.code
    LEFT JOIN swing ON swing.district_code = dist.code
    CROSS JOIN side_found sf
),
per_factor AS (
    SELECT u.i, avg(u.x) AS mean, stddev_pop(u.x) AS sd, count(u.x)::int AS n
    FROM raw, unnest(raw.v) WITH ORDINALITY AS u(x, i)
    GROUP BY u.i
),
stats AS (
    SELECT array_agg(mean ORDER BY i) AS mean, array_agg(sd ORDER BY i) AS sd,
           array_agg(n ORDER BY i) AS n
    FROM per_factor
),
inserted AS (
    INSERT INTO ranking_value (campaign_id, snapshot_id, district_code, v, z, damping,
                               swing_change, population, households, poor_households,
                               social_dwellings, doors, tiles, registered, abstentions, votes_cast)
    SELECT :campaign_id, :snapshot_id, raw.code,
           raw.v || ARRAY[NULL, NULL]::double precision[],
           ARRAY(SELECT CASE WHEN u.x IS NULL OR u.s IS NULL OR u.s = 0 THEN 0
                             ELSE (u.x - u.m) / u.s END
                 FROM unnest(raw.v, stats.mean, stats.sd) WITH ORDINALITY AS u(x, m, s, i)
                 ORDER BY u.i) || ARRAY[0, 0]::double precision[],
           1, raw.swing_change, raw.ind, raw.men, raw.men_pauv, raw.log_soc, raw.doors,
           raw.tiles, raw.inscrits, raw.abstentions, raw.exprimes
    FROM raw CROSS JOIN stats
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS districts, stats.mean, stats.sd, stats.n
FROM stats
