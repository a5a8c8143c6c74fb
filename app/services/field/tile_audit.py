"""Audit of door tiles: one event per viewer and minute with how many tiles and where.

Door tiles at z >= 15 show precise doors, and a map loads them by the dozen: an audit insert per
tile would double the cost of the hot path, and one event per minute naming a single tile (the
first design) hid a bulk crawl of a whole town behind one harmless-looking line. Instead:

- **Within a worker**, every door tile served is added to the viewer's window of the current
  wall-clock minute, in memory (a dict lookup and a few comparisons: no I/O on the hot path). A
  window holds the number of tiles, the door points they carried, the zoom range and the
  bounding box of the tiles (lon/lat, WGS 84).
- **Written once the minute is over** by a background task of the worker (``run``, started by
  the app's lifespan, a few seconds after each minute) as one ``tiles.doors.view`` audit event
  per window: ``row_count`` = door points, ``object`` = "N door tiles, z.., bbox w,s,e,n", and
  ``details`` = tiles, doors, bbox, zooms, window start/end and the worker. A window of more than
  ``settings.audit_tile_burst`` tiles is written ``flagged`` (a bulk crawl shows to the admins);
  the hourly burst detector counts these events like any other view.
- **Across workers** (uvicorn ``--workers``, several servers): each worker writes its own event
  for its share of the viewer's minute; windows are aligned on wall-clock minutes, so the events
  of one viewer and minute share ``details.window_start`` and add up exactly (tiles, doors) and
  union their boxes. ``TILE_MINUTES_SQL`` below is that aggregation (docs/maps.md).

Limits: the event is written after the minute ends (up to ~65 s after the view), and a worker
killed without a clean stop (SIGKILL, power loss) loses its open windows; a normal stop (SIGTERM)
writes them first. A failed write is retried at the next flush (bounded backlog, then dropped
with an error in the log).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.db import set_tenant
from app.services.access.audit import write_event

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import CampaignContext
    from app.db import Database

log = logging.getLogger("porte.audit")

ACTION = "tiles.doors.view"
WINDOW_S = 60
FLUSH_DELAY_S = 2.0  # after each minute boundary, so that the last tiles of the minute are in
MAX_BACKLOG = 100_000  # windows kept for a retry while the database cannot be written
WORKER = f"{socket.gethostname()}:{os.getpid()}"

# Per viewer and minute across workers: sum of tiles and doors, union of the boxes.
TILE_MINUTES_SQL = """
SELECT coalesce(actor_user_id, actor_invite_id) AS viewer, details->>'window_start' AS minute,
       sum((details->>'tiles')::int) AS tiles, sum(row_count) AS doors,
       min((details->'bbox'->>0)::float) AS west, min((details->'bbox'->>1)::float) AS south,
       max((details->'bbox'->>2)::float) AS east, max((details->'bbox'->>3)::float) AS north,
       count(*) AS workers, bool_or(flagged) AS flagged
FROM audit_event WHERE campaign_id = :c AND action = 'tiles.doors.view'
GROUP BY 1, 2 ORDER BY 2 DESC, 3 DESC
"""


@dataclass(slots=True)
class Window:
    """One viewer's door tiles in one wall-clock minute, in this worker."""

    campaign_id: uuid.UUID
    user_id: uuid.UUID | None
    invite_id: uuid.UUID | None
    role: str | None
    request_id: str | None
    client: str | None
    minute: int  # unix time // 60
    tiles: int = 0
    doors: int = 0
    zmin: int = 99
    zmax: int = -1
    # bounding box in normalised web-mercator units (0..1, y downwards)
    x0: float = math.inf
    y0: float = math.inf
    x1: float = -math.inf
    y1: float = -math.inf

    def add(self, z: int, x: int, y: int, doors: int) -> None:
        side = float(1 << z)
        self.tiles += 1
        self.doors += doors
        if z < self.zmin:
            self.zmin = z
        if z > self.zmax:
            self.zmax = z
        if x / side < self.x0:
            self.x0 = x / side
        if (x + 1) / side > self.x1:
            self.x1 = (x + 1) / side
        if y / side < self.y0:
            self.y0 = y / side
        if (y + 1) / side > self.y1:
            self.y1 = (y + 1) / side

    def bbox(self) -> list[float]:
        """[west, south, east, north] in degrees (WGS 84), rounded to ~1 m."""

        def lat(ny: float) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ny))))

        return [
            round(self.x0 * 360 - 180, 5),
            round(lat(self.y1), 5),
            round(self.x1 * 360 - 180, 5),
            round(lat(self.y0), 5),
        ]


def _iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * WINDOW_S, UTC).isoformat()


class TileAudit:
    """The per-worker windows of door-tile views and their writer (see the module docstring)."""

    def __init__(self, db: Database, settings: Settings, clock=time.time):
        self.db = db
        self.burst = settings.audit_tile_burst
        self.burst_threshold = settings.audit_burst_threshold
        self.clock = clock
        self._open: dict[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None], Window] = {}
        self._closed: list[Window] = []
        self._lock = asyncio.Lock()

    def seen(self, ctx: CampaignContext, z: int, x: int, y: int, doors: int) -> None:
        """Count one door tile served to the context's viewer (hot path: memory only)."""
        minute = int(self.clock() // WINDOW_S)
        p = ctx.principal
        key = (ctx.campaign_id, p.user_id, p.invite_id)
        w = self._open.get(key)
        if w is None or w.minute != minute:
            if w is not None:
                self._closed.append(w)
            w = self._open[key] = Window(
                ctx.campaign_id,
                p.user_id,
                p.invite_id,
                ctx.role,
                ctx.request_id,
                ctx.client,
                minute,
            )
        w.add(z, x, y, doors)

    def pending(self) -> int:
        """Windows not written yet (open or closed)."""
        return len(self._open) + len(self._closed)

    async def flush(self, *, everything: bool = False) -> int:
        """Write the windows whose minute is over (every window with ``everything``: at
        shutdown, in tests); return how many events were written."""
        async with self._lock:
            now_minute = int(self.clock() // WINDOW_S)
            for key, w in list(self._open.items()):
                if everything or w.minute < now_minute:
                    self._closed.append(self._open.pop(key))
            todo, self._closed = self._closed, []
            if not todo:
                return 0
            by_campaign: dict[uuid.UUID, list[Window]] = {}
            for w in todo:
                by_campaign.setdefault(w.campaign_id, []).append(w)
            written = 0
            for campaign_id, windows in by_campaign.items():
                try:
                    await self._write(campaign_id, windows)
                    written += len(windows)
                except Exception as exc:  # noqa: BLE001 - keep them for the next flush
                    self._closed.extend(windows)
                    log.error(
                        "could not write %d door-tile audit event(s) of campaign %s (%s); "
                        "will retry",
                        len(windows),
                        campaign_id,
                        type(exc).__name__,
                    )
            if len(self._closed) > MAX_BACKLOG:
                dropped = len(self._closed) - MAX_BACKLOG
                del self._closed[:dropped]
                log.error("dropped %d door-tile audit event(s): database unwritable", dropped)
            return written

    async def _write(self, campaign_id: uuid.UUID, windows: list[Window]) -> None:
        async with self.db.transaction() as session:
            await set_tenant(session, campaign_id, None)
            for w in windows:
                bbox = w.bbox()
                zooms = f"z{w.zmin}" if w.zmin == w.zmax else f"z{w.zmin}-{w.zmax}"
                await write_event(
                    session,
                    campaign_id=campaign_id,
                    user_id=w.user_id,
                    invite_id=w.invite_id,
                    role=w.role,
                    action=ACTION,
                    object=f"{w.tiles} door tiles, {zooms}, bbox "
                    + ",".join(f"{v:.5f}" for v in bbox),
                    rows=w.doors,
                    request_id=w.request_id,
                    client=w.client,
                    details={
                        "tiles": w.tiles,
                        "doors": w.doors,
                        "bbox": bbox,
                        "zooms": [w.zmin, w.zmax],
                        "window_start": _iso(w.minute),
                        "window_end": _iso(w.minute + 1),
                        "worker": WORKER,
                    },
                    burst_threshold=self.burst_threshold,
                    flag=w.tiles > self.burst,
                )

    async def run(self) -> None:
        """Flush a few seconds after every minute boundary, until cancelled (lifespan)."""
        while True:
            now = self.clock()
            await asyncio.sleep(WINDOW_S - now % WINDOW_S + FLUSH_DELAY_S)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the next minute tries again
                log.error("door-tile audit flush failed (%s)", type(exc).__name__)
