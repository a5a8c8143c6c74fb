"""The map pages are served by the app itself, with their vendored libraries (no CDN)."""

from __future__ import annotations

import re

from app.config import REPO_ROOT

STATIC = REPO_ROOT / "static"


async def test_pages_and_vendored_libraries_are_served(client, settings):
    for path, needle in [
        ("/m/", "/static/vendor/leaflet/leaflet.js"),
        ("/organiser/", "Leaflet.VectorGrid.bundled.min.js"),
        ("/analyst/", "/analyst/analyst.js"),
        ("/m/sheet.html", "/m/sheet.js"),
    ]:
        resp = await client.get(path)
        assert resp.status_code == 200, path
        assert needle in resp.text, path
    leaflet = await client.get("/static/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:2000]
    assert (await client.get("/static/vendor/leaflet/leaflet.css")).status_code == 200
    licence = await client.get("/static/vendor/leaflet.vectorgrid/LICENSE.txt")
    assert licence.status_code == 200 and "BEER-WARE" in licence.text
    for vendored in ("protomaps-leaflet.js", "LICENSE", "THIRD-PARTY-LICENSES.txt"):
        resp = await client.get(f"/static/vendor/protomaps-leaflet/{vendored}")
        assert resp.status_code == 200, vendored
    assert "Protomaps LLC" in (await client.get("/static/vendor/protomaps-leaflet/LICENSE")).text
    config = (await client.get("/m/config.json")).json()
    assert set(config) == {"basemap", "raster_url", "raster_attribution", "public_base_url"}
    assert config["raster_url"] is None  # no third party by default


async def test_every_asset_the_service_worker_caches_exists(client):
    """One missing file would make the service worker's install fail, and the page not offline."""
    sw = (await client.get("/m/sw.js")).text
    assets = re.search(r"const ASSETS = \[(.*?)\];", sw, re.S).group(1)
    paths = re.findall(r'"([^"]+)"', assets)
    assert "/m/" in paths and "/m/app.js" in paths
    for path in paths:
        assert (await client.get(path)).status_code == 200, path


def test_pages_load_nothing_from_other_origins_and_ask_no_free_text():
    """No CDN, and no free-text field about a household anywhere in the field pages."""
    for page in STATIC.glob("*/*.html"):
        html = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', html), page
    for page in ("m/index.html", "m/sheet.html"):
        html = (STATIC / page).read_text()
        assert "<textarea" not in html
        kinds = re.findall(r'<input[^>]*type="([a-z-]+)"', html)
        assert set(kinds) <= {"email", "password", "datetime-local"}, (page, kinds)
