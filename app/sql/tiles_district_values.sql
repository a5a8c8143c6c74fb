-- The district layer's score, rank and counts of the campaign's own ranking, the counts below k
-- left out: the columns that follow the district's own in tiles_districts.sql and
-- tiles_districts_stored.sql (their slot "values", filled in by app/services/field/tiles.py
-- with the statement's bind of k). sc: the district's ranking_score row; v: its ranking_value.
           round(sc.score::numeric, 3)::float8 AS score,
           sc.rank,
           CASE WHEN v.doors >= {k} THEN v.doors END AS doors,
           CASE WHEN v.households >= {k} THEN round(v.households)::int END AS households,
           -- supporter and visit counts are stored blank below k (and flagged): never shown then
           CASE WHEN v.supporters >= {k} AND NOT v.supporters_suppressed
                THEN v.supporters END AS supporters,
           CASE WHEN v.visited_doors >= {k} AND NOT v.visited_doors_suppressed
                THEN v.visited_doors END AS visited_doors
