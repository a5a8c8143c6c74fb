"""The ranking's SQL: named statements from ``app/sql/ranking_*.sql`` and the short ones here.

Every statement is static text with bound values (no fragment spliced in): an input the campaign
does not have (no election chosen, no round started) is a NULL bind that the statement handles.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from sqlalchemy import TextClause, text

_SQL_DIR = resources.files("app") / "sql"


@cache
def named(name: str) -> TextClause:
    """``app/sql/<name>.sql`` as a statement (comment lines dropped: they name binds in prose)."""
    body = (_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    return text("\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("--")))


def declared_factors(name: str = "ranking_values") -> list[str]:
    """The factor order a SQL file declares on its first line (``-- factors: a, b, ...``)."""
    first = (_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8").splitlines()[0]
    return [f.strip() for f in first.split(":", 1)[1].split(",")]


# What the ranking of a campaign depends on, read in one round trip: the saved settings, the
# campaign's side and k, and the version of every input (a snapshot is fresh while they match).
STATE = text(
    """
    SELECT c.side AS campaign_side, c.k_threshold, c.supporter_cells,
           s.weights, s.base_preset, s.election_id, s.swing_from_id, s.side, s.updated_at,
           t.kind AS territory_kind, t.codes AS territory_codes, t.version AS territory,
           t.refreshed_for, r.districts || ':' || r.constituencies AS reference,
           r.elections, a.version AS allocation, a.stale AS allocation_stale,
           coalesce(ch.doors, 0) AS doors, coalesce(ch.turfs, 0) AS turfs,
           coalesce(ch.supporters, 0) AS supporters,
           m.scoring_id AS map_scoring
    FROM campaign c
    CROSS JOIN reference_state r
    CROSS JOIN allocation_state a
    LEFT JOIN ranking_settings s ON s.campaign_id = c.id
    LEFT JOIN campaign_territory t ON t.campaign_id = c.id
    LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
    LEFT JOIN ranking_default m ON m.campaign_id = c.id
    WHERE c.id = :c
    """
)

SNAPSHOT = text(
    "SELECT id, versions, inputs, factor_names, mean, sd, n, districts, version, refreshed_at "
    "FROM ranking_snapshot WHERE campaign_id = :c AND request_key = :k"
)
NEW_SNAPSHOT = text(
    "INSERT INTO ranking_snapshot (campaign_id, request_key, versions, inputs, factor_names) "
    "VALUES (:c, :k, CAST(:versions AS jsonb), CAST(:inputs AS jsonb), :names) RETURNING id"
)
CLEAR_VALUES = text("DELETE FROM ranking_value WHERE campaign_id = :c AND snapshot_id = :s")
SAVE_SNAPSHOT = text(
    "UPDATE ranking_snapshot SET versions = CAST(:versions AS jsonb), "
    "inputs = CAST(:inputs AS jsonb), factor_names = :names, mean = :mean, sd = :sd, n = :n, "
    "districts = :districts, version = version + 1, refreshed_at = clock_timestamp() "
    "WHERE campaign_id = :c AND id = :s RETURNING version, refreshed_at"
)
# Snapshots kept per campaign (the latest built, and the map's).
OLD_SNAPSHOTS = text(
    "DELETE FROM ranking_snapshot s WHERE s.campaign_id = :c AND s.id NOT IN ("
    "  SELECT id FROM ranking_snapshot WHERE campaign_id = :c ORDER BY id DESC LIMIT :keep) "
    "AND NOT EXISTS (SELECT 1 FROM ranking_default d WHERE d.campaign_id = :c "
    "                AND d.snapshot_id = s.id)"
)

SCORING = text(
    "SELECT id, weights, snapshot_version, computed_at FROM ranking_scoring "
    "WHERE campaign_id = :c AND snapshot_id = :s AND weights_key = :k"
)
NEW_SCORING = text(
    "INSERT INTO ranking_scoring (campaign_id, snapshot_id, weights_key, weights, "
    "snapshot_version) VALUES (:c, :s, :k, CAST(:w AS jsonb), :v) "
    "ON CONFLICT (campaign_id, snapshot_id, weights_key) DO UPDATE SET "
    "snapshot_version = EXCLUDED.snapshot_version, computed_at = clock_timestamp() "
    "RETURNING id, computed_at"
)
CLEAR_SCORES = text("DELETE FROM ranking_score WHERE campaign_id = :c AND scoring_id = :s")
CLEAR_COMMUNE_SCORES = text(
    "DELETE FROM ranking_commune_score WHERE campaign_id = :c AND scoring_id = :s"
)
OLD_SCORINGS = text(
    "DELETE FROM ranking_scoring s WHERE s.campaign_id = :c AND s.id NOT IN ("
    "  SELECT id FROM ranking_scoring WHERE campaign_id = :c ORDER BY computed_at DESC "
    "  LIMIT :keep) "
    "AND NOT EXISTS (SELECT 1 FROM ranking_default d WHERE d.campaign_id = :c "
    "                AND d.scoring_id = s.id)"
)
SET_DEFAULT = text(
    "INSERT INTO ranking_default (campaign_id, scoring_id, snapshot_id) VALUES (:c, :s, :snap) "
    "ON CONFLICT (campaign_id) DO UPDATE SET scoring_id = EXCLUDED.scoring_id, "
    "snapshot_id = EXCLUDED.snapshot_id, set_at = clock_timestamp() "
    "WHERE ranking_default.scoring_id IS DISTINCT FROM EXCLUDED.scoring_id"
)

# A page of ranked districts (by rank: an index range scan), or one district by code.
ROW = """
    SELECT sc.rank, sc.district_code AS code, d.name, d.commune_code, d.commune_name,
           sc.score, v.damping, v.v, v.z, v.swing_change,
           v.population, v.households, v.poor_households, v.social_dwellings, v.doors, v.tiles,
           v.registered, v.abstentions, v.votes_cast, v.supporters, v.supporters_suppressed,
           v.visited_doors, v.visited_doors_suppressed
"""
ROW_FROM = """
    FROM ranking_score sc
    JOIN ranking_value v ON v.campaign_id = sc.campaign_id AND v.snapshot_id = :snap
                        AND v.district_code = sc.district_code
    LEFT JOIN district d ON d.code = sc.district_code
"""
PAGE = text(
    ROW + ROW_FROM + "WHERE sc.campaign_id = :c AND sc.scoring_id = :s AND sc.rank > :after "
    "ORDER BY sc.rank LIMIT :limit"
)
ONE = text(
    ROW + ROW_FROM + "WHERE sc.campaign_id = :c AND sc.scoring_id = :s AND sc.district_code = :code"
)
