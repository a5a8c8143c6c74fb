"""The pages: volunteer (/m/), organiser (/organiser/), analyst (/analyst/), joining a campaign
from an e-mailed invitation (/join/), and vendored JS.

The pages are static files over the same API; Leaflet comes from the ``xstatic-leaflet`` package
and the vector-tile renderer is vendored in static/vendor (no CDN: the service must work without
internet). ``/m/config.json`` tells the pages which basemap to draw: the service's own vector
basemap (``/basemap/...``, app/routers/basemap.py) by default, a raster URL only when set
explicitly; the maps still work (doors, turfs) when there is none.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.staticfiles import StaticFiles

from app.security import SettingsDep

router = APIRouter(tags=["maps"])


@router.get("/m/config.json", include_in_schema=False)
async def map_config(request: Request, settings: SettingsDep) -> JSONResponse:
    """Public settings of the map pages: which basemap to draw (no secrets)."""
    archive = request.app.state.basemap.get()
    vector = None
    if archive is not None:
        info = archive.info()
        vector = {
            "url": f"/basemap/{{z}}/{{x}}/{{y}}.mvt?v={archive.version}",
            **{k: info[k] for k in ("version", "bounds", "minzoom", "maxzoom", "layers")},
            "attribution": info["attribution"],
            "placeholder": info["placeholder"],
        }
    body = {
        "basemap": vector,
        "raster_url": settings.basemap_raster_url or None,
        "raster_attribution": settings.basemap_raster_attribution,
        "public_base_url": settings.base_url,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})


class _Static(StaticFiles):
    """Static files that browsers revalidate (ETag) so a new release shows at once."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount(app: FastAPI) -> None:
    """Serve the pages and the vendored libraries."""
    import xstatic.pkg.leaflet

    static_dir = app.state.settings.static_dir
    app.mount(
        "/static/vendor/leaflet",
        _Static(directory=xstatic.pkg.leaflet.BASE_DIR),
        name="vendor-leaflet",
    )
    app.mount("/static", _Static(directory=static_dir), name="static")
    for page in ("m", "organiser", "analyst", "join"):
        app.mount(f"/{page}", _Static(directory=static_dir / page, html=True), name=f"page-{page}")
