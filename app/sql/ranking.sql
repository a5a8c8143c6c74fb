-- Full ranking of a campaign's districts in ONE pass.
--
-- Binds: :campaign_id uuid, :k int (suppression threshold), :weights jsonb {factor: weight},
--        :election_id int (NULL = no election), :side text[] (upper-case tokens; NULL = no side),
--        :swing_from_id int (reference election of the swing; NULL = no swing),
--        :communes text[] (NULL = every district), :has_supporters and :has_round booleans (the
--        supporter table exists / the campaign has a current canvass round).
-- Optional inputs are spliced in by app/services/ranking.py from ranking_*.sql fragments, or an
-- empty relation of the same shape when the table is missing: /*ELECTION*/, /*CANDIDATES*/,
-- /*SWING*/, /*SUPPORTERS*/, /*VISITED*/.
--
-- Rules (docs/ranking.md): each factor is standardised across the campaign's districts with a
-- population z-score; a missing value counts as the mean (z = 0) and is flagged; a factor with no
-- value or no spread contributes 0. score = damping * sum(weight * z), damping = 1 - coverage, and
-- each contribution already includes the damping, so the contributions add up to the score.
-- Supporter and visited-door counts below k are scored as 0 and never leave this query.
-- Swing: change = 100 x (our share of votes cast in the chosen election - our share in the
-- reference election), in points (positive = our side gained); the factor is |change|
-- (volatility); a district without a result in either election has no value (missing).
WITH
dist AS (
    SELECT d.code, d.name, d.commune_code, d.commune_name
    FROM district d
    WHERE CAST(:communes AS text[]) IS NULL OR d.commune_code = ANY (CAST(:communes AS text[]))
),
el AS (/*ELECTION*/),
cand AS (/*CANDIDATES*/),
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
        FROM cand cd
    ) c
    GROUP BY c.district_code
),
side_found AS (
    SELECT count(side_voix) > 0 AS found, count(ref_side_voix) > 0 AS ref_found FROM side
),
ref_el AS (/*SWING*/),
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
sup AS (/*SUPPORTERS*/),
visited AS (/*VISITED*/),
raw AS (
    SELECT dist.code, dist.name, dist.commune_code, dist.commune_name,
           p.ind, p.men, p.men_pauv, p.log_soc, p.doors, p.tiles,
           el.inscrits, el.abstentions, el.exprimes,
           CASE WHEN :has_supporters THEN coalesce(sup.n, 0) END AS supporters_raw,
           CASE WHEN :has_round THEN coalesce(visited.n, 0) END AS visited_raw,
           p.ind AS population,
           p.men AS households,
           p.men_pauv / nullif(p.men, 0) AS poor_share,
           p.log_soc / nullif(p.log_total, 0) AS social_housing_share,
           p.men_prop / nullif(p.men, 0) AS owners_share,
           p.men_1ind / nullif(p.men, 0) AS single_person_share,
           p.men_5ind / nullif(p.men, 0) AS large_family_share,
           p.ind_snv / nullif(p.ind, 0) AS living_standard,
           p.ind_18_24 / nullif(p.ind, 0) AS age_18_24_share,
           p.ind_25_39 / nullif(p.ind, 0) AS age_25_39_share,
           p.ind_40_54 / nullif(p.ind, 0) AS age_40_54_share,
           p.ind_55_64 / nullif(p.ind, 0) AS age_55_64_share,
           p.ind_65_79 / nullif(p.ind, 0) AS age_65_79_share,
           p.ind_80p / nullif(p.ind, 0) AS age_80p_share,
           p.men_imputed / nullif(p.men, 0) AS imputed_share,
           p.doors::double precision AS door_count,
           p.men / nullif(p.doors, 0) AS households_per_door,
           el.inscrits::double precision AS registered,
           el.abstentions::double precision / nullif(el.inscrits, 0) AS abstention_rate,
           CASE WHEN sf.found THEN coalesce(side.side_voix, 0)::double precision
                                   / nullif(el.exprimes, 0) END AS side_score,
           CASE WHEN sf.found THEN 1 - abs(coalesce(side.side_voix, 0)
                                           - coalesce(side.rival_voix, 0))::double precision
                                   / nullif(el.exprimes, 0) END AS closeness,
           swing.change AS swing_change,
           abs(swing.change) AS swing,
           CASE WHEN NOT :has_supporters THEN NULL
                WHEN coalesce(sup.n, 0) >= :k THEN sup.n ELSE 0 END::double precision
               AS supporters,
           CASE WHEN NOT :has_round OR coalesce(p.doors, 0) = 0 THEN NULL
                WHEN coalesce(visited.n, 0) >= :k THEN visited.n::double precision / p.doors
                ELSE 0 END AS coverage
    FROM dist
    LEFT JOIN district_profile p ON p.district_code = dist.code
    LEFT JOIN el ON el.district_code = dist.code
    LEFT JOIN side ON side.district_code = dist.code
    LEFT JOIN swing ON swing.district_code = dist.code
    LEFT JOIN sup ON sup.district_code = dist.code
    LEFT JOIN visited ON visited.district_code = dist.code
    CROSS JOIN side_found sf
),
long AS (
    SELECT raw.code, f.factor, f.value
    FROM raw
    CROSS JOIN LATERAL (VALUES
        ('population', raw.population), ('households', raw.households),
        ('poor_share', raw.poor_share), ('social_housing_share', raw.social_housing_share),
        ('owners_share', raw.owners_share), ('single_person_share', raw.single_person_share),
        ('large_family_share', raw.large_family_share), ('living_standard', raw.living_standard),
        ('age_18_24_share', raw.age_18_24_share), ('age_25_39_share', raw.age_25_39_share),
        ('age_40_54_share', raw.age_40_54_share), ('age_55_64_share', raw.age_55_64_share),
        ('age_65_79_share', raw.age_65_79_share), ('age_80p_share', raw.age_80p_share),
        ('imputed_share', raw.imputed_share), ('door_count', raw.door_count),
        ('households_per_door', raw.households_per_door), ('registered', raw.registered),
        ('abstention_rate', raw.abstention_rate), ('side_score', raw.side_score),
        ('closeness', raw.closeness), ('swing', raw.swing), ('supporters', raw.supporters),
        ('coverage', raw.coverage)
    ) AS f(factor, value)
),
stats AS (
    SELECT factor, avg(value) AS mean, stddev_pop(value) AS sd, count(value) AS n
    FROM long
    GROUP BY factor
),
w AS (
    SELECT key AS factor, value::double precision AS weight
    FROM jsonb_each_text(CAST(:weights AS jsonb))
),
damp AS (
    SELECT code, 1 - coalesce(least(greatest(coverage, 0), 1), 0) AS damping FROM raw
),
contrib AS (
    SELECT l.code, l.factor, l.value,
           CASE WHEN l.value IS NULL OR s.sd IS NULL OR s.sd = 0 THEN 0
                ELSE (l.value - s.mean) / s.sd END AS z,
           coalesce(w.weight, 0) AS weight,
           dm.damping
    FROM long l
    JOIN stats s USING (factor)
    JOIN damp dm USING (code)
    LEFT JOIN w USING (factor)
),
scored AS (
    SELECT code,
           sum(weight * z * damping) AS score,
           jsonb_object_agg(factor, jsonb_build_array(value, z, weight, weight * z * damping))
               AS factors
    FROM contrib
    GROUP BY code
),
ranked AS (
    SELECT s.*, row_number() OVER (ORDER BY s.score DESC, s.code) AS rank
    FROM scored s
)
SELECT r.rank, r.code, raw.name, raw.commune_code, raw.commune_name, r.score, dm.damping,
       r.factors, raw.swing_change,
       jsonb_build_object(
           'population', raw.ind, 'households', raw.men, 'poor_households', raw.men_pauv,
           'social_dwellings', raw.log_soc, 'doors', raw.doors, 'tiles', raw.tiles,
           'registered', raw.inscrits, 'abstentions', raw.abstentions, 'votes_cast', raw.exprimes,
           'supporters', CASE WHEN raw.supporters_raw >= :k THEN raw.supporters_raw END,
           'supporters_suppressed', raw.supporters_raw IS NOT NULL AND raw.supporters_raw < :k,
           'visited_doors', CASE WHEN raw.visited_raw >= :k THEN raw.visited_raw END,
           'visited_doors_suppressed', raw.visited_raw IS NOT NULL AND raw.visited_raw < :k
       ) AS counts,
       CASE WHEN r.rank = 1 THEN
           (SELECT jsonb_object_agg(factor, jsonb_build_array(mean, sd, n)) FROM stats)
       END AS stats
FROM ranked r
JOIN raw USING (code)
JOIN damp dm USING (code)
ORDER BY r.rank
