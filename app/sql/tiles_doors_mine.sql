-- The caller's active assignments (volunteer accounts and invite sessions): the CTE that the
-- volunteer's door layers start with (slot "mine" of tiles_doors_grid.sql and
-- tiles_doors_volunteer.sql). Binds: $1 campaign_id uuid, $8 volunteer user id (NULL for invite
-- sessions), $9 the invite's assignment id.
mine AS (
    SELECT s.id FROM assignment s
    WHERE s.campaign_id = $1 AND s.ended_at IS NULL
      AND (s.starts_at IS NULL OR s.starts_at <= now())
      AND (s.ends_at IS NULL OR s.ends_at > now())
      AND (s.volunteer_user_id = $8 OR s.id = $9)
),
