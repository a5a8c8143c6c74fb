"""The service's own basemap: PMTiles read in place, served same-origin, checked before use; and a
Content-Security-Policy that lets the pages talk to no other origin by default."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from typer.testing import CliRunner

from app.commands.basemap import import_basemap
from app.services.field.basemap import BasemapError, open_archive
from tests import fixtures_browser
from tests.conftest import make_settings
from tests.fixtures_browser import tile_of

placeholder_basemap = fixtures_browser.placeholder_basemap

BRUZ_DOOR = (-1.7454643, 48.0282820)  # 1 rue des Acacias, Bruz (real BAL point of the sample)


def _archive(
    path: Path,
    *,
    tile_type: TileType = TileType.MVT,
    layers: list | None = None,
    bounds: tuple[float, float, float, float] = (-5.5, 41.0, 10.0, 51.5),
) -> Path:
    """A one-tile PMTiles archive (z0) of the given kind, for the bad-input tests."""
    w, s, e, n = bounds
    with path.open("wb") as f:
        writer = Writer(f)
        writer.write_tile(zxy_to_tileid(0, 0, 0), b"\x1a\x00")
        writer.finalize(
            {
                "tile_type": tile_type,
                "tile_compression": Compression.NONE,
                "min_lon_e7": int(w * 1e7),
                "min_lat_e7": int(s * 1e7),
                "max_lon_e7": int(e * 1e7),
                "max_lat_e7": int(n * 1e7),
                "center_zoom": 0,
                "center_lon_e7": 0,
                "center_lat_e7": 0,
            },
            {"vector_layers": layers if layers is not None else [{"id": "roads", "fields": {}}]},
        )
    return path


@pytest.fixture
async def basemap_client(placeholder_basemap, sample_db):
    from app.main import create_app

    app = create_app(make_settings(sample_db, basemap=placeholder_basemap))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_placeholder_basemap_is_served_same_origin_with_etag(basemap_client):
    config = (await basemap_client.get("/m/config.json")).json()
    bm = config["basemap"]
    assert config["raster_url"] is None
    assert bm["url"].startswith("/basemap/{z}/{x}/{y}.mvt?v=") and bm["placeholder"] is True
    assert {"earth", "districts", "addresses", "streets", "places"} <= set(bm["layers"])
    west, south, east, north = bm["bounds"]
    assert west <= BRUZ_DOOR[0] <= east and south <= BRUZ_DOOR[1] <= north
    assert west <= 2.30 <= east and south <= 48.75 <= north  # and 92-13

    x, y = tile_of(*BRUZ_DOOR, 15)
    url = f"/basemap/15/{x}/{y}.mvt"
    first = await basemap_client.get(f"{url}?v={bm['version']}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert first.headers["content-encoding"] == "gzip"
    assert "immutable" in first.headers["cache-control"]
    tile = mapbox_vector_tile.decode(first.content)  # httpx has undone the gzip
    numbers = {f["properties"].get("housenumber") for f in tile["addresses"]["features"]}
    assert "1" in numbers and "2" in numbers
    assert tile["earth"]["features"] and tile["streets"]["features"]
    assert any(f["properties"]["name"] == "Rue des Acacias" for f in tile["streets"]["features"])

    again = await basemap_client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert (await basemap_client.get(url)).headers["cache-control"] == "public, max-age=3600"
    # without gzip support, the plain tile
    plain = await basemap_client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert mapbox_vector_tile.decode(plain.content)["addresses"]["features"]
    # the sea off Brittany: nothing there; beyond the zooms: nothing (the pages over-zoom)
    assert (await basemap_client.get("/basemap/15/0/0.mvt")).status_code == 204
    assert (await basemap_client.get(f"/basemap/18/{x * 8}/{y * 8}.mvt")).status_code == 204
    bad = await basemap_client.get("/basemap/3/9/0.mvt")
    assert bad.status_code == 404 and "2^z" in bad.json()["detail"]


async def test_no_basemap_installed_says_how(client):
    config = (await client.get("/m/config.json")).json()
    assert config["basemap"] is None and config["raster_url"] is None
    resp = await client.get("/basemap/10/0/0.mvt")
    assert resp.status_code == 404 and "porte basemap import" in resp.json()["detail"]


async def test_csp_no_inline_script_and_no_other_origin_by_default(client, sample_db):
    """Fails on the old code ('unsafe-inline' scripts, https: http: images, an OSM default)."""
    from app.config import Settings
    from app.main import create_app

    assert Settings.model_fields["basemap_raster_url"].default == ""
    for path in ("/m/", "/organiser/", "/analyst/", "/m/config.json"):
        csp = (await client.get(path)).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        assert "'unsafe-inline'" not in directives["script-src"], csp
        assert "'unsafe-eval'" not in directives["script-src"], csp
        assert directives["script-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert not re.search(r"(^|\s)(https?:|\*)", directives["img-src"]), csp
    # the explicit raster setting opens images to that origin, and only to it
    raster = "https://tiles.example.org/osm/{z}/{x}/{y}.png"
    app = create_app(make_settings(sample_db, basemap_raster_url=raster))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        resp = await c.get("/m/")
        img = re.search(r"img-src ([^;]*)", resp.headers["content-security-policy"]).group(1)
        assert img.split() == ["'self'", "data:", "blob:", "https://tiles.example.org"]
        assert (await c.get("/m/config.json")).json()["raster_url"] == raster
    with pytest.raises(ValueError, match="PORTE_BASEMAP_RASTER_URL"):
        make_settings(sample_db, basemap_raster_url="javascript:alert(1)")


def test_pages_have_no_inline_script():
    """Every script of the pages is a file of the service (the CSP would block any other)."""
    static = Path(__file__).resolve().parent.parent / "static"
    for page in static.glob("*/*.html"):
        html = page.read_text()
        for attrs in re.findall(r"<script([^>]*)>", html):
            assert "src=" in attrs, (page, attrs)
        assert not re.search(r"\son[a-z]+=", html), page  # no inline event handler


def test_bad_archives_are_refused_with_the_reason_and_the_area(tmp_path, sample_db, english):
    target = tmp_path / "installed.pmtiles"
    text_file = tmp_path / "streets.mbtiles"
    text_file.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(BasemapError, match="not a PMTiles archive"):
        import_basemap(text_file, target, sample_db.owner)

    raster = _archive(tmp_path / "raster.pmtiles", tile_type=TileType.PNG)
    with pytest.raises(BasemapError, match=r"PNG images, not vector tiles.*longitude -5\.5"):
        import_basemap(raster, target, sample_db.owner)

    no_layer = _archive(tmp_path / "nolayer.pmtiles", layers=[])
    with pytest.raises(BasemapError, match=r"no vector layer.*covers longitude -5\.5000 to 10"):
        import_basemap(no_layer, target, sample_db.owner)

    corsica = _archive(tmp_path / "corse.pmtiles", bounds=(8.5, 41.3, 9.6, 43.1))
    with pytest.raises(BasemapError) as err:
        import_basemap(corsica, target, sample_db.owner)
    msg = err.value.detail
    assert "covers longitude 8.5000 to 9.6000, latitude 41.3000 to 43.1000" in msg
    assert "polling stations" in msg and "latitude 48." in msg
    assert not target.exists()  # nothing installed

    france = _archive(tmp_path / "france.pmtiles")
    info = import_basemap(france, target, sample_db.owner)
    assert target.exists() and info["layers"] == ["roads"] and not info["placeholder"]
    assert open_archive(target).attribution == "© OpenStreetMap contributors (ODbL)"


def test_cli_import_names_the_problem(tmp_path, sample_db, monkeypatch):
    from app.cli import cli

    monkeypatch.setenv("PORTE_BASEMAP", str(tmp_path / "bm.pmtiles"))
    monkeypatch.setenv("DATABASE_URL", sample_db.app)
    monkeypatch.setenv("OWNER_DATABASE_URL", sample_db.owner)
    monkeypatch.setenv("PORTE_LANG", "en")
    runner = CliRunner()
    bad = runner.invoke(
        cli, ["basemap", "import", str(_archive(tmp_path / "r.pmtiles", tile_type=TileType.JPEG))]
    )
    assert bad.exit_code == 1 and "JPEG images, not vector tiles" in bad.output
    ok = runner.invoke(cli, ["basemap", "import", str(_archive(tmp_path / "v.pmtiles"))])
    assert ok.exit_code == 0, ok.output
    assert "Basemap installed at" in ok.output and "layers roads" in ok.output
    shown = runner.invoke(cli, ["basemap", "info"])
    assert shown.exit_code == 0 and '"maxzoom": 0' in shown.output


def test_placeholder_archive_is_small_and_gzipped(placeholder_basemap):
    archive = open_archive(placeholder_basemap)
    try:
        assert archive.placeholder and archive.gzipped
        assert (archive.min_zoom, archive.max_zoom) == (10, 15)
        assert archive.size < 8_000_000
        data = archive.tile(15, *tile_of(*BRUZ_DOOR, 15))
        assert data is not None and gzip.decompress(data)
    finally:
        archive.close()


def test_demo_builds_a_placeholder_unless_a_basemap_is_installed(
    tmp_path, sample_db, monkeypatch, capsys, english
):
    from app.commands.demo import _demo_basemap

    monkeypatch.delenv("PORTE_BASEMAP", raising=False)
    settings = make_settings(
        sample_db, basemap=tmp_path / "none.pmtiles", db_dir=tmp_path / "state" / "db"
    )
    _demo_basemap(settings, sample_db.owner, rebuild=False)
    built = tmp_path / "state" / "demo-basemap.pmtiles"
    assert built.exists() and open_archive(built).placeholder
    assert os.environ["PORTE_BASEMAP"] == str(built)
    assert "PLACEHOLDER" in capsys.readouterr().out
    # a basemap the campaign installed is served as it is
    real = _archive(tmp_path / "real.pmtiles")
    monkeypatch.delenv("PORTE_BASEMAP")
    _demo_basemap(make_settings(sample_db, basemap=real), sample_db.owner, rebuild=False)
    assert "PORTE_BASEMAP" not in os.environ
    assert "PLACEHOLDER" not in capsys.readouterr().out
