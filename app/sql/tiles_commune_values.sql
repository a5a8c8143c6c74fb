-- The commune layer's score (mean), best rank and counts of the campaign's own ranking, the
-- counts below k left out: the columns that follow the commune's own in tiles_communes.sql and
-- tiles_communes_stored.sql (their slot "values", filled in by app/services/field/tiles.py
-- with the statement's bind of k). rc: the commune's ranking_commune_score row.
           round(rc.score::numeric, 3)::float8 AS score,
           rc.best_rank AS rank,
           CASE WHEN rc.doors >= {k} THEN rc.doors END AS doors,
           CASE WHEN rc.households >= {k} THEN round(rc.households)::int END AS households,
           CASE WHEN rc.supporters >= {k} THEN rc.supporters END AS supporters,
           CASE WHEN rc.visited_doors >= {k} THEN rc.visited_doors END AS visited_doors
