"""Statistical disclosure control: the one place that decides which counts may leave the server.

Every count an analyst can read (progress, ranking, exports, OGC items, district tiles) and every
supporter count an organiser or analyst can read is decided here. The rule, for a campaign's
threshold k:

1. **Primary suppression**: a confidential count below k is hidden. Zero too, where a hidden
   cell must not even be known to be non-zero (supporters: "nobody here" and "one supporter here"
   must read the same). Where zeros are shown (progress: "no door of this district was visited"
   describes nobody), every hidden count is known to be at least 1, so its range is made one
   wider.
2. **Complementary suppression**: a reader who knows every published count, the public data and
   every linear relation between them (a total is the sum of its parts; a campaign is the sum of
   its districts; a round's visited doors are the sum of their outcomes) must not be able to pin a
   hidden count down. Each hidden cell gets a *certificate*: a move of the hidden cells that
   changes none of the published counts, keeps every relation and every public bound true, and
   slides the cell over at least k values (``min(k - 1, its public upper bound)`` wide, when the
   public data alone already bound it more tightly, e.g. a district with fewer than k doors).
   Cells are hidden alongside it until such a move exists. Hiding more never breaks an earlier
   certificate (a move only involves hidden cells), so one pass suffices.
3. **Public reference data** (INSEE tiles, BAN doors, election results) are not confidential:
   anyone can download them. They are blanked below k for consistency with INSEE's own rule
   (``blank_below``), and a reader is assumed to know them exactly.

The search for a move is the classic network heuristic of cell suppression: cells are the edges of
a graph whose nodes are the relations (a cell in one relation is tied to a free "ground" node), and
a move is a cycle of alternating signs, found with Dijkstra's algorithm over (node, sign) states,
cheapest first (already hidden cells cost nothing; a published cell costs its weight, more for
larger counts), the widest of the cheapest. When no single cycle is wide enough, several are added
up on the residual bounds, as in a max flow. A table therefore puts each confidential cell in at
most two relations: the builders (``app.disclosure.builders``) are shaped that way, and a table
that is not is refused (``ValueError``). When no move exists even by hiding everything else, the
whole connected part of the table is hidden. The heuristic may hide more than an optimal pattern
would; it never hides less than the guarantee needs, since every certificate is checked exactly.

Pure: no I/O, no database, no framework, so that the rule can be unit- and property-tested
directly; the services compute raw counts, call this module, and publish only what it returns.

Limits (docs/privacy.md): the guarantee is about what one role can read at one moment. Reading
before and after one change (a single new visit, one more supporter) can reveal that change;
k and the partition of supporter counts should be chosen once.

The package: ``solver`` (the tables of cells and relations, and the suppression itself),
``builders`` (the tables the services publish: one partition, progress), ``published`` (the
counts of the ranking, its exports, OGC items and district tiles: public ones blanked below k).
Everything is imported from ``app.disclosure``.
"""

from app.disclosure.builders import (
    AREA_VISITED_WEIGHT,
    CAMPAIGN,
    CAMPAIGN_WEIGHT,
    VISITED,
    ProgressPublication,
    protect_partition,
    protect_progress,
)
from app.disclosure.published import (
    COUNT_FACTORS,
    COUNTS,
    ESTIMATED_COUNTS,
    INTEGER_COUNTS,
    apply_k,
    blank_below,
)
from app.disclosure.solver import GROUND, Key, Publication, Table, protect

__all__ = [
    "AREA_VISITED_WEIGHT",
    "CAMPAIGN",
    "CAMPAIGN_WEIGHT",
    "COUNTS",
    "COUNT_FACTORS",
    "ESTIMATED_COUNTS",
    "GROUND",
    "INTEGER_COUNTS",
    "VISITED",
    "Key",
    "ProgressPublication",
    "Publication",
    "Table",
    "apply_k",
    "blank_below",
    "protect",
    "protect_partition",
    "protect_progress",
]
