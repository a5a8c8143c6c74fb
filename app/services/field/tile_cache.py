"""Door tiles kept in memory per worker while the campaign's doors do not change.

An organiser's map asks for the same door tiles again and again (panning back, reloading, several
organisers on one turf), and a tile costs a few milliseconds of database time to build: statuses
looked up door by door, then encoded. Every tile is stored with the campaign's door version
(``campaign_change.doors``, bumped at commit by any visit, do-not-knock flag, new round or address
import: alembic/versions/0009_door_versions.py), read in the same round trip as the caller's
standing. A tile is served from here only if its version is the campaign's current one, so the
map is never staler than the database.

Only the admin and organiser door layer is cached: it is the same for every staff member of a
campaign. The districts layer is cached too (key ``("districts", campaign, z, x, y)``), with the
version of what it draws (territory, the map's ranking, the districts: see
app/services/field/tiles.py). Volunteer tiles depend on the caller's assignment and its time
window, turf tiles on ``now()``, and are always built.

Bounded by bytes (least recently used out first); ``PORTE_TILE_CACHE_MB=0`` turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

Key = tuple[Any, ...]  # (campaign, z, x, y) for doors, ("districts", campaign, z, x, y)


class _Entry(NamedTuple):
    version: Any  # an int (doors) or a tuple (districts): compared with ==, and > on a race
    tile: Any
    size: int


@dataclass
class CacheStats:
    """Counters, for the benchmark and the tests."""

    hits: int = 0
    misses: int = 0
    stale: int = 0


class TileCache:
    """An LRU of encoded tiles keyed by campaign and tile, each tagged with its door version."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Key, _Entry] = OrderedDict()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key, version: Any) -> Any | None:
        """The tile stored for ``key`` if it was built at this door version, else None."""
        item = self._items.get(key)
        if item is None:
            self.stats.misses += 1
            return None
        if item.version != version:
            self.stats.stale += 1
            return None
        self._items.move_to_end(key)
        self.stats.hits += 1
        return item.tile

    def put(self, key: Key, version: Any, tile: Any, size: int) -> None:
        """Store a tile built at ``version`` (``size`` bytes), evicting the least recently used."""
        if not self.enabled or size > self.max_bytes // 4:
            return
        old = self._items.get(key)
        if old is not None:
            if old.version > version:  # a newer build got here first: keep it
                return
            del self._items[key]
            self.bytes -= old.size
        self._items[key] = _Entry(version, tile, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= evicted.size

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
