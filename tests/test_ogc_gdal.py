"""OGC API - Features read by a real client: GDAL's OAPIF driver (``ogrinfo``/``ogr2ogr``).

The app is served over HTTP by uvicorn on 127.0.0.1 (the hand-built area of
tests/fixtures_ranking.py: 4 districts, 4 tiles, counts below k = 11 blanked), and the Debian
``gdal-bin`` binaries are run against it as an analyst would (``--config GDAL_HTTP_HEADERS
"Authorization: Bearer ..."``). GDAL follows the same requests as QGIS's provider (collections,
schema, items with ``limit``, ``bbox``, ``rel=next`` paging), so what it reads is what QGIS shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from tests.factories import bearer, make_user
from tests.fixtures_browser import free_port, uvicorn_thread
from tests.fixtures_ranking import ranking_env  # noqa: F401

OGRINFO, OGR2OGR = shutil.which("ogrinfo"), shutil.which("ogr2ogr")
pytestmark = pytest.mark.skipif(
    OGRINFO is None or OGR2OGR is None,
    reason="GDAL's ogrinfo/ogr2ogr are not installed (Debian: apt-get install gdal-bin)",
)
FETCH = re.compile(r"HTTP: Fetch\((\S+)\)")


@dataclass
class Served:
    """The OGC landing URL of the ranking campaign, served over HTTP, and what tests need."""

    url: str
    base: str
    world: object
    area: object
    engine: object
    settings: object


@pytest.fixture(scope="module")
def served(ranking_env) -> Iterator[Served]:  # noqa: F811
    """The app on the ranking fixture's database, served by uvicorn in a thread."""
    from app.main import create_app

    _, world, area, engine, settings = ranking_env
    with uvicorn_thread(create_app(settings), free_port()) as base:
        yield Served(f"{base}{world.url('/ogc')}", base, world, area, engine, settings)


def gdal(*args: str, headers: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a GDAL binary with the caller's bearer token, debug output on (HTTP fetches)."""
    cmd = list(args)
    if headers:
        cmd += ["--config", "GDAL_HTTP_HEADERS", f"Authorization: {headers['Authorization']}"]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        [*cmd, "--debug", "on"], capture_output=True, text=True, timeout=60, env=env
    )


def layers_of(summary: str) -> dict[str, dict]:
    """Layer name -> {count, fields {name: type}} from ``ogrinfo -so -al`` output."""
    out: dict[str, dict] = {}
    current: dict | None = None
    for line in summary.splitlines():
        if line.startswith("Layer name: "):
            current = out.setdefault(line.removeprefix("Layer name: "), {"fields": {}})
        elif current is not None and line.startswith("Feature Count: "):
            current["count"] = int(line.removeprefix("Feature Count: "))
        elif current is not None and re.match(r"^[a-z_0-9]+: [A-Z]", line):
            name, type_ = line.split(": ", 1)
            current["fields"][name] = type_.split(" (")[0]
    return out


async def _db_counts(engine) -> tuple[int, int]:
    async with engine.connect() as conn:
        districts = (await conn.execute(text("SELECT count(*) FROM district"))).scalar_one()
        tiles = (await conn.execute(text("SELECT count(*) FROM insee_tile"))).scalar_one()
    return districts, tiles


async def _get(served: Served, path: str, role: str = "analyst") -> httpx.Response:
    async with httpx.AsyncClient(base_url=served.base, timeout=30) as c:
        return await c.get(served.world.url(path), headers=served.world.headers[role])


async def test_ogrinfo_lists_the_collections_with_database_counts_and_schema_types(served):
    r = gdal(
        OGRINFO, "-ro", "-so", "-al", f"OAPIF:{served.url}", headers=served.world.headers["analyst"]
    )
    assert r.returncode == 0, r.stderr
    layers = layers_of(r.stdout)
    assert set(layers) == {"districts", "tiles", "priority-zones"}
    districts, tiles = await _db_counts(served.engine)
    ranking = (await _get(served, "/ranking")).json()
    assert layers["districts"]["count"] == districts
    assert layers["tiles"]["count"] == tiles
    assert layers["priority-zones"]["count"] == len(ranking["districts"]) == districts
    # Types come from the collection's schema (GDAL says so), not from guessing the first page:
    # v_side_score is blank on every district (no side chosen), doors below k on most.
    assert "OAPIF: Using JSON schema" in r.stderr
    zones = layers["priority-zones"]["fields"]
    assert zones["v_side_score"] == "Real" and zones["c_abstention_rate"] == "Real"
    assert zones["doors"] == "Integer" and zones["doors_suppressed"] == "Integer(Boolean)"
    assert zones["rank"] == "Integer" and zones["code"] == "String"
    assert layers["tiles"]["fields"]["men"] == "Real"


async def test_ogr2ogr_pages_and_copies_priority_zones_as_exported(served, tmp_path):
    out = tmp_path / "ogc.gpkg"
    r = gdal(
        OGR2OGR,
        "-f",
        "GPKG",
        str(out),
        f"OAPIF:{served.url}",
        "-oo",
        "PAGE_SIZE=3",
        headers=served.world.headers["analyst"],
    )
    assert r.returncode == 0, r.stderr
    fetched = FETCH.findall(r.stderr)
    # 4 features at 3 a page: GDAL followed our rel=next link to the second page.
    assert any("/collections/priority-zones/items?limit=3&offset=3" in u for u in fetched)
    got = gpd.read_file(out, layer="priority-zones", engine="pyogrio")
    assert sorted(got["code"]) == sorted(got["id"]) and got["code"].is_unique
    ranking = (await _get(served, "/ranking")).json()
    assert len(got) == len(ranking["districts"])

    # One district's attributes equal GET /ranking (C: 4 doors, below k = 11).
    c_code = served.area.code("C")
    c = got.set_index("code").loc[c_code]
    ranked = next(d for d in ranking["districts"] if d["code"] == c_code)
    assert c["rank"] == ranked["rank"]
    assert c["score"] == pytest.approx(ranked["score"], abs=1e-6)
    assert c["damping"] == pytest.approx(ranked["damping"], abs=1e-6)
    assert c["c_abstention_rate"] == pytest.approx(
        next(
            x["contribution"] for x in ranked["contributions"] if x["factor"] == "abstention_rate"
        ),
        abs=1e-6,
    )
    for name in ("households", "registered", "abstentions", "votes_cast", "doors", "supporters"):
        expected = ranked["counts"][name]
        if expected is None:
            assert pd.isna(c[name]), name
        else:
            assert c[name] == pytest.approx(expected, abs=0.05), name
        assert bool(c[f"{name}_suppressed"]) is bool(ranked["counts"][f"{name}_suppressed"])
    assert pd.isna(c["doors"]) and bool(c["doors_suppressed"])  # 4 doors < k

    # Every attribute of every zone equals the GeoPackage export (same k-suppression).
    async with httpx.AsyncClient(base_url=served.base, timeout=30) as client:
        export = await client.get(
            served.world.url("/exports/priority-zones.gpkg"),
            headers=served.world.headers["analyst"],
        )
    assert export.status_code == 200
    (tmp_path / "export.gpkg").write_bytes(export.content)
    exported = gpd.read_file(tmp_path / "export.gpkg", engine="pyogrio")
    columns = [name for name in exported.columns if name != "geometry"]
    assert set(columns) <= set(got.columns)
    # Columns blank on every zone (no side chosen) are blank and numbers in both.
    blank = [name for name in columns if got[name].isna().all()]
    assert blank and all(exported[name].isna().all() for name in blank)
    assert all(exported[name].dtype.kind in "fi" for name in blank if name.startswith("v_"))
    left = got[columns].sort_values("code").reset_index(drop=True)
    right = exported[columns].sort_values("code").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False, check_exact=False, atol=1e-6)
    assert (
        got.sort_values("code")
        .geometry.reset_index(drop=True)
        .geom_equals_exact(
            exported.sort_values("code").geometry.reset_index(drop=True), tolerance=1e-7
        )
        .all()
    )

    # The read is audited once per layer load (first page), not per page.
    async with served.engine.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT object, row_count FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'ogc.priority_zones' AND actor_user_id = :u"
                ),
                {"c": served.world.campaign_id, "u": served.world.users["analyst"]},
            )
        ).all()
    first_pages = [u for u in fetched if "priority-zones/items?limit=3" in u and "offset" not in u]
    assert len(events) >= len(first_pages) >= 1
    assert all(row.row_count == len(got) for row in events)


async def test_gdal_spatial_filter_sends_bbox(served):
    c = (await _get(served, f"/ogc/collections/districts/items/{served.area.code('C')}")).json()
    ring = c["geometry"]["coordinates"][0][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    spat = [min(xs) + 1e-5, min(ys) + 1e-5, max(xs) - 1e-5, max(ys) - 1e-5]
    r = gdal(
        OGRINFO,
        "-ro",
        "-q",
        f"OAPIF:{served.url}",
        "districts",
        "-spat",
        *map(str, spat),
        headers=served.world.headers["organiser"],
    )
    assert r.returncode == 0, r.stderr
    assert any("bbox=" in u for u in FETCH.findall(r.stderr))
    codes = set(re.findall(r"^\s+code \(String\) = (\S+)$", r.stdout, re.M))
    # Inside district C, which district A surrounds; B and D are elsewhere.
    assert codes == {served.area.code("C"), served.area.code("A")}


async def test_refused_callers_get_a_gdal_error(served):
    volunteer = gdal(
        OGRINFO, "-ro", "-so", f"OAPIF:{served.url}", headers=served.world.headers["volunteer"]
    )
    assert volunteer.returncode != 0 and "403" in volunteer.stderr
    assert "Le rôle bénévole ne permet pas de faire cela" in volunteer.stderr
    anonymous = gdal(OGRINFO, "-ro", "-so", f"OAPIF:{served.url}")
    assert anonymous.returncode != 0 and "401" in anonymous.stderr
    outsider = bearer(served.settings, await make_user(served.engine))
    other = gdal(OGRINFO, "-ro", "-so", f"OAPIF:{served.url}", headers=outsider)
    assert other.returncode != 0 and "404" in other.stderr
    assert "Layer name" not in volunteer.stdout + anonymous.stdout + other.stdout
