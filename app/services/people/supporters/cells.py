"""The coarse cells of placed supporters (200 m tile, polling station, IRIS), kept current.

A supporter's exact door and point are stored only encrypted (migration 0013); the aggregates and
the ranking count the clear cells ``tile_id``, ``bv_code`` and ``iris_code`` instead. The tile is
grid arithmetic on the point and never changes; the district codes depend on the loaded contours.
Importing contours bumps ``district_version`` (statement trigger on ``district``), and
``ensure_cells`` recomputes the codes of the campaign's supporters computed under an older version
before anything counts them: it decrypts their points in memory, passes them to
``porte_point_cells`` and stores only the codes. It needs the data keys only when there is such
work to do (the first read after a contour import).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text

from app.config import Settings
from app.services.access.crypto import Cipher, aad

if TYPE_CHECKING:
    from app.db import Executor

log = logging.getLogger("porte.supporters")
BATCH = 5000

_VERSION = text("SELECT version FROM district_version")
_STALE = text(
    "SELECT id, key_id, point_enc FROM supporter WHERE campaign_id = :c "
    "AND point_enc IS NOT NULL AND cells_version IS DISTINCT FROM :v ORDER BY id LIMIT :n"
)
_UPDATE = text(
    """
    UPDATE supporter s SET tile_id = c.tile_id, bv_code = c.bv_code, iris_code = c.iris_code,
        cells_version = :v
    FROM unnest(CAST(:ids AS uuid[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]))
         AS t(id, lon, lat)
    CROSS JOIN LATERAL porte_point_cells(t.lon, t.lat) c
    WHERE s.campaign_id = :c AND s.id = t.id AND s.cells_version IS DISTINCT FROM :v
    """
)


async def ensure_cells(
    session: Executor, campaign_id: uuid.UUID, settings: Settings | None = None
) -> int:
    """Recompute the district codes of this campaign's supporters placed before the last contour
    import; return how many rows changed. ``session`` is scoped to the campaign (RLS tenant set).
    ``settings`` (the data keys) default to the environment's."""
    version = (await session.execute(_VERSION)).scalar_one()
    done = 0
    cipher: Cipher | None = None
    while True:
        rows = (await session.execute(_STALE, {"c": campaign_id, "v": version, "n": BATCH})).all()
        if not rows:
            break
        if cipher is None:
            if settings is None:
                from app.config import get_settings

                settings = get_settings()
            cipher = Cipher.from_settings(settings)
        ids, lons, lats = [], [], []
        for r in rows:
            point = cipher.decrypt(r.point_enc, key_id=r.key_id, ad=aad(campaign_id, r.id, "point"))
            lon, lat = (float(x) for x in point.split())  # type: ignore[union-attr]
            ids.append(r.id)
            lons.append(lon)
            lats.append(lat)
        await session.execute(
            _UPDATE, {"c": campaign_id, "v": version, "ids": ids, "lon": lons, "lat": lats}
        )
        done += len(rows)
        if len(rows) < BATCH:
            break
    if done:
        log.info("district codes of %d supporter(s) recomputed after a contour import", done)
    return done
