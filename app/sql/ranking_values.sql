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
-- counts as the mean (z = 0); a factor with no value or no spread gets z = 0 everywhere
-- (porte_z, migration 0020). Factors are written out one per line, in the catalogue's order:
-- explicit array positions cost nothing per district, where unnesting the arrays did.
-- A candidate is "ours" when its nuance or label equals a side token, or its label contains a
-- token of 4+ letters (the same rule as ranking_swing_reference.sql).
-- Swing: change = 100 x (our share of votes cast in the chosen election - our share in the
-- reference election), in points (positive = our side gained); the factor is |change|.
WITH
dist AS (
    SELECT cd.district_code AS code, d.commune_code
    FROM campaign_district cd
    JOIN district d ON d.code = cd.district_code
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
-- Which candidates are ours: decided once per distinct (nuance, label), not per district.
candidate AS (
    SELECT DISTINCT coalesce(c.nuance, '') AS nuance, coalesce(c.label, '') AS label
    FROM election_candidate_result c
    WHERE c.election_id IN (CAST(:election_id AS int), CAST(:swing_from_id AS int))
      AND CAST(:side AS text[]) IS NOT NULL
),
ours AS (
    SELECT nuance, label FROM candidate
    WHERE upper(nuance) = ANY (CAST(:side AS text[]))
       OR upper(label) = ANY (CAST(:side AS text[]))
       OR EXISTS (SELECT 1 FROM unnest(CAST(:side AS text[])) s(tok)
                  WHERE length(s.tok) >= 4 AND strpos(upper(label), s.tok) > 0)
),
side AS (
    SELECT c.district_code,
           sum(c.voix) FILTER (WHERE c.is_side AND c.election_id = :election_id) AS side_voix,
           max(c.voix) FILTER (WHERE NOT c.is_side AND c.election_id = :election_id)
               AS rival_voix,
           sum(c.voix) FILTER (WHERE c.is_side AND c.election_id = CAST(:swing_from_id AS int))
               AS ref_side_voix
    FROM (
        SELECT cd.election_id, cd.district_code, cd.voix, o.label IS NOT NULL AS is_side
        FROM election_candidate_result cd
        JOIN dist ON dist.code = cd.district_code
        LEFT JOIN ours o ON o.nuance = coalesce(cd.nuance, '') AND o.label = coalesce(cd.label, '')
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
    SELECT dist.code, dist.commune_code, p.ind, p.men, p.men_pauv, p.log_soc, p.doors, p.tiles,
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
-- Per factor (the array positions above): mean, population standard deviation, count.
stats AS (
    SELECT ARRAY[
               avg(v[1]),
               avg(v[2]),
               avg(v[3]),
               avg(v[4]),
               avg(v[5]),
               avg(v[6]),
               avg(v[7]),
               avg(v[8]),
               avg(v[9]),
               avg(v[10]),
               avg(v[11]),
               avg(v[12]),
               avg(v[13]),
               avg(v[14]),
               avg(v[15]),
               avg(v[16]),
               avg(v[17]),
               avg(v[18]),
               avg(v[19]),
               avg(v[20]),
               avg(v[21]),
               avg(v[22])
           ]::double precision[] AS mean,
           ARRAY[
               stddev_pop(v[1]),
               stddev_pop(v[2]),
               stddev_pop(v[3]),
               stddev_pop(v[4]),
               stddev_pop(v[5]),
               stddev_pop(v[6]),
               stddev_pop(v[7]),
               stddev_pop(v[8]),
               stddev_pop(v[9]),
               stddev_pop(v[10]),
               stddev_pop(v[11]),
               stddev_pop(v[12]),
               stddev_pop(v[13]),
               stddev_pop(v[14]),
               stddev_pop(v[15]),
               stddev_pop(v[16]),
               stddev_pop(v[17]),
               stddev_pop(v[18]),
               stddev_pop(v[19]),
               stddev_pop(v[20]),
               stddev_pop(v[21]),
               stddev_pop(v[22])
           ]::double precision[] AS sd,
           ARRAY[
               count(v[1]),
               count(v[2]),
               count(v[3]),
               count(v[4]),
               count(v[5]),
               count(v[6]),
               count(v[7]),
               count(v[8]),
               count(v[9]),
               count(v[10]),
               count(v[11]),
               count(v[12]),
               count(v[13]),
               count(v[14]),
               count(v[15]),
               count(v[16]),
               count(v[17]),
               count(v[18]),
               count(v[19]),
               count(v[20]),
               count(v[21]),
               count(v[22])
           ]::int[] AS n
    FROM raw
),
inserted AS (
    INSERT INTO ranking_value (campaign_id, snapshot_id, district_code, commune_code, v, z, damping,
                               swing_change, population, households, poor_households,
                               social_dwellings, doors, tiles, registered, abstentions, votes_cast)
    SELECT :campaign_id, :snapshot_id, raw.code, raw.commune_code,
           raw.v || ARRAY[NULL, NULL]::double precision[],
           ARRAY[
               porte_z(raw.v[1], stats.mean[1], stats.sd[1]),
               porte_z(raw.v[2], stats.mean[2], stats.sd[2]),
               porte_z(raw.v[3], stats.mean[3], stats.sd[3]),
               porte_z(raw.v[4], stats.mean[4], stats.sd[4]),
               porte_z(raw.v[5], stats.mean[5], stats.sd[5]),
               porte_z(raw.v[6], stats.mean[6], stats.sd[6]),
               porte_z(raw.v[7], stats.mean[7], stats.sd[7]),
               porte_z(raw.v[8], stats.mean[8], stats.sd[8]),
               porte_z(raw.v[9], stats.mean[9], stats.sd[9]),
               porte_z(raw.v[10], stats.mean[10], stats.sd[10]),
               porte_z(raw.v[11], stats.mean[11], stats.sd[11]),
               porte_z(raw.v[12], stats.mean[12], stats.sd[12]),
               porte_z(raw.v[13], stats.mean[13], stats.sd[13]),
               porte_z(raw.v[14], stats.mean[14], stats.sd[14]),
               porte_z(raw.v[15], stats.mean[15], stats.sd[15]),
               porte_z(raw.v[16], stats.mean[16], stats.sd[16]),
               porte_z(raw.v[17], stats.mean[17], stats.sd[17]),
               porte_z(raw.v[18], stats.mean[18], stats.sd[18]),
               porte_z(raw.v[19], stats.mean[19], stats.sd[19]),
               porte_z(raw.v[20], stats.mean[20], stats.sd[20]),
               porte_z(raw.v[21], stats.mean[21], stats.sd[21]),
               porte_z(raw.v[22], stats.mean[22], stats.sd[22]),
               0, 0
           ]::double precision[],
           1, raw.swing_change, raw.ind, raw.men, raw.men_pauv, raw.log_soc, raw.doors,
           raw.tiles, raw.inscrits, raw.abstentions, raw.exprimes
    FROM raw CROSS JOIN stats
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS districts, stats.mean, stats.sd, stats.n
FROM stats
