"""The campaign's own basemap, same origin: vector tiles read from a PMTiles archive.

Public like ``/districts`` (OpenStreetMap or other open data, never campaign data). Tiles carry an
ETag; a URL with ``?v=<version>`` of the current archive is immutable (the pages use it, so a new
import is a new URL and the phone's offline copy never mixes two archives).
"""

from __future__ import annotations

import gzip

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.errors import NotFound
from app.i18n import _
from app.routers.tiles import MVT

router = APIRouter(tags=["maps"])

BASEMAP_RESPONSES = {
    200: {"content": {MVT: {}}, "description": "The tile (Mapbox Vector Tile)."},
    204: {"description": "No tile there (sea, outside the area, beyond the archive's zooms)."},
    304: {"description": "Unchanged since the ETag you sent."},
    404: {"description": "No basemap is installed (`porte basemap import`)."},
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=3600"


@router.get("/basemap/{z}/{x}/{y}.mvt", responses=BASEMAP_RESPONSES)
async def basemap_tile(request: Request, z: int, x: int, y: int, v: str | None = None) -> Response:
    """One tile of the basemap. Beyond the archive's zooms or area: 204 (the pages over-zoom)."""
    archive = request.app.state.basemap.get()
    if archive is None:
        raise NotFound(
            _("No basemap is installed on this server: see `porte basemap import` (docs/maps.md)."),
            field="basemap",
        )
    if not (0 <= z <= 30 and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
        msg = _("No tile {z}/{x}/{y}: x and y go from 0 to 2^z - 1.")
        raise NotFound(msg.format(z=z, x=x, y=y))
    etag = f'"{archive.version}-{z}-{x}-{y}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if v == archive.version else REVALIDATE,
        "Vary": "Accept-Encoding",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    data = archive.tile(z, x, y)
    if data is None:
        return Response(status_code=204, headers=headers)
    if archive.gzipped:
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            data = gzip.decompress(data)
    return Response(data, media_type=MVT, headers=headers)
