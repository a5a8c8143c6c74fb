# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_imports)
"""Bad input: each case is refused with a message naming the file, line and reason, and the
database is left exactly as it was (checked with a checksum of every reference table)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from app.errors import ImportFailed
from app.services.reference.imports import addresses as addresses_module
from app.services.reference.imports.addresses import import_addresses
from app.services.reference.imports.districts import import_districts
from app.services.reference.imports.results import import_results
from app.services.reference.imports.sample import BRUZ_BAL, DISTRICTS, ELECTIONS, TILES
from app.services.reference.imports.tiles import import_tiles
from tests.fixtures_imports import (
    bal_to_ban,
    copy_lines,
    fetch,
    loaded_db,  # noqa: F401  (fixture)
    read_report,
    snapshot,
)


@pytest.fixture(autouse=True)
def _english():
    """The messages are asserted in English here (French is the default: the CLI test below and
    test_i18n check it)."""
    from app.i18n import reset_language, set_language

    token = set_language("en")
    yield
    reset_language(token)


async def refused(urls, coro, *patterns: str) -> ImportFailed:
    """Run an import that must be refused; check the message and that nothing changed."""
    before = await snapshot(urls.owner)
    with pytest.raises(ImportFailed) as info:
        await coro
    after = await snapshot(urls.owner)
    assert after == before, "a refused import changed the database"
    for p in patterns:
        assert re.search(p, info.value.detail), f"{p!r} not in: {info.value.detail}"
    assert "Nothing was imported" in info.value.detail
    return info.value


# ---------------------------------------------------------------- addresses


async def test_wrong_delimiter(loaded_db, tmp_path):
    f = copy_lines(
        bal_to_ban(tmp_path / "b.csv", prefix="t", limit=20),
        tmp_path / "comma.csv",
        lambda i, line: line.replace(";", ","),
    )
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, f),
        r"comma\.csv, line 1",
        r"wrong delimiter.*','.*';'",
    )


async def test_missing_required_column(loaded_db, tmp_path):
    def drop_lat(i, line):
        cells = line.rstrip("\n").split(";")
        del cells[14]  # BAL: long;lat -> lat is the 15th column
        return ";".join(cells) + "\n"

    f = copy_lines(BRUZ_BAL, tmp_path / "nolat.csv", drop_lat)
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, f),
        r"nolat\.csv, line 1",
        r"missing required column\(s\): lat",
    )


async def test_empty_file_and_header_only(loaded_db, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    await refused(loaded_db, import_addresses(loaded_db.owner, empty), r"empty\.csv", "empty")
    header = copy_lines(BRUZ_BAL, tmp_path / "header.csv", lambda i, line: line if i == 1 else None)
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, header),
        r"header\.csv, line 2",
        "header but no rows",
    )
    await refused(loaded_db, import_tiles(loaded_db.owner, empty), "empty")
    await refused(loaded_db, import_results(loaded_db.owner, empty, election="x"), "empty")


async def test_unknown_encoding_names_the_line(loaded_db, tmp_path):
    src = bal_to_ban(tmp_path / "b.csv", prefix="t", limit=400)
    lines = src.read_text(encoding="utf-8").splitlines(True)
    first_accent = next(i for i, line in enumerate(lines, 1) if not line.isascii())
    f = tmp_path / "latin.csv"
    f.write_bytes("".join(lines).encode("cp1252"))
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, f),
        rf"latin\.csv, line {first_accent}:",
        "unknown encoding",
        "--encoding",
    )
    # told the encoding, the same file loads
    ok = await import_addresses(
        loaded_db.owner, f, encoding="cp1252", report_path=tmp_path / "r.csv"
    )
    assert ok.rows_loaded == 400
    await fetch(loaded_db.owner, "DELETE FROM address WHERE source_file = 'latin.csv'")
    await fetch(loaded_db.owner, "DELETE FROM import_run WHERE source_file = 'latin.csv'")


async def test_duplicated_ids_name_both_lines(loaded_db, tmp_path):
    src = bal_to_ban(tmp_path / "b.csv", prefix="t", limit=50)
    lines = src.read_text(encoding="utf-8").splitlines(True)
    f = tmp_path / "dup.csv"
    f.write_text("".join([*lines, lines[10]]), encoding="utf-8")
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, f),
        r"dup\.csv, line 52",
        r"duplicated id 't35047_\w+' on lines 11, 52",
    )


async def test_rejected_row_refuses_unless_allowed(loaded_db, tmp_path):
    src = bal_to_ban(tmp_path / "b.csv", prefix="t", limit=30)
    f = copy_lines(
        src,
        tmp_path / "badpoint.csv",
        lambda i, line: line.replace(";48.", ";north.") if i == 7 else line,
    )
    await refused(
        loaded_db,
        import_addresses(loaded_db.owner, f),
        r"badpoint\.csv: 1 row\(s\) rejected \(line 7, column lon/lat: no valid WGS84 point",
        r"--max-rejects",
    )
    assert read_report(tmp_path / "badpoint.csv.rejects.csv")[0]["line"] == "7"
    report = await import_addresses(loaded_db.owner, f, max_rejects=1)
    assert (report.rows_loaded, report.rows_rejected) == (29, 1)
    await fetch(loaded_db.owner, "DELETE FROM address WHERE source_file = 'badpoint.csv'")
    await fetch(loaded_db.owner, "DELETE FROM import_run WHERE source_file = 'badpoint.csv'")


async def test_numbers_postgresql_would_refuse_are_rejected_rows(loaded_db, tmp_path):
    """A house number beyond the integer column's range, non-ASCII digits, a coordinate Python
    reads but PostgreSQL would not: rejected rows naming line and column (not a database error
    refusing the whole file), the other rows loaded with --max-rejects."""
    src = bal_to_ban(tmp_path / "b.csv", prefix="n", limit=40)
    edits = {
        5: lambda line: _set_field(line, "numero", "2147483648"),
        9: lambda line: line.replace(";48.", ";4_8.", 1),
        12: lambda line: _set_field(line, "numero", "\u0663"),  # ARABIC-INDIC DIGIT THREE
        15: lambda line: _set_field(line, "numero", "2147483647"),  # the largest accepted
        20: lambda line: line.replace(";48.", ";+48.", 1),  # accepted: read as PostgreSQL would
    }
    f = copy_lines(src, tmp_path / "nums.csv", lambda i, line: edits.get(i, lambda x: x)(line))
    report = await import_addresses(loaded_db.owner, f, max_rejects=3)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (40, 37, 3)
    got = [
        (r["line"], r["column"], r["reason"])
        for r in read_report(tmp_path / "nums.csv.rejects.csv")
    ]
    assert got == [
        ("5", "numero", "'2147483648' is too large a house number"),
        ("9", "lon/lat", got[1][2]),
        ("12", "numero", "'\u0663' is not a house number"),
    ]
    assert got[1][2].startswith("no valid WGS84 point")
    largest = await fetch(
        loaded_db.owner, "SELECT numero FROM address WHERE source_file = 'nums.csv' ORDER BY 1 DESC"
    )
    assert largest[0][0] == 2147483647
    line20 = src.read_text().splitlines()[19]
    lat = await fetch(
        loaded_db.owner, "SELECT lat FROM address WHERE ban_id = $1", _field(line20, "id")
    )
    assert lat[0][0] == float(_field(line20, "lat"))
    await fetch(loaded_db.owner, "DELETE FROM address WHERE source_file = 'nums.csv'")
    await fetch(loaded_db.owner, "DELETE FROM import_run WHERE source_file = 'nums.csv'")


def _field(line: str, name: str) -> str:
    """One field of a BAN line."""
    from tests.fixtures_imports import BAN_HEADER

    return line.split(";")[BAN_HEADER.index(name)]


def _set_field(line: str, name: str, value: str) -> str:
    """A BAN line with one field replaced."""
    from tests.fixtures_imports import BAN_HEADER

    fields = line.split(";")
    fields[BAN_HEADER.index(name)] = value
    return ";".join(fields)


@pytest.mark.parametrize("existing", [False, True], ids=["first-load", "replace"])
async def test_failure_half_way_leaves_nothing(loaded_db, tmp_path, monkeypatch, existing):
    """A crash after 2,000 of 5,760 doors were sent by COPY: all or nothing."""
    monkeypatch.setattr(addresses_module, "CHUNK_ROWS", 500)
    sent = []

    def crash(n: int) -> None:
        sent.append(n)
        if n >= 2000:
            raise RuntimeError("disk on fire (injected)")

    path = BRUZ_BAL if existing else bal_to_ban(tmp_path / "fresh.csv", prefix="t")
    before = await snapshot(loaded_db.owner)
    with pytest.raises(RuntimeError, match="injected"):
        await import_addresses(loaded_db.owner, path, fault=crash)
    assert sent[-1] == 2000 and len(sent) == 4
    assert await snapshot(loaded_db.owner) == before


async def test_cli_exit_code_and_message(loaded_db, tmp_path, monkeypatch):
    f = copy_lines(
        bal_to_ban(tmp_path / "b.csv", prefix="t", limit=5),
        tmp_path / "tabs.csv",
        lambda i, line: line.replace(";", "\t"),
    )
    monkeypatch.setenv("OWNER_DATABASE_URL", loaded_db.owner)
    monkeypatch.setenv("DATABASE_URL", loaded_db.app)
    from app.cli import cli

    before = await snapshot(loaded_db.owner)
    result = await _invoke(cli, ["import", "addresses", str(f)])
    assert result.exit_code == 1
    # French by default on the command line
    assert "Import refusé" in result.output and "mauvais séparateur" in result.output
    assert await snapshot(loaded_db.owner) == before
    good = bal_to_ban(tmp_path / "ok.csv", prefix="t", limit=5)
    result = await _invoke(cli, ["import", "addresses", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows_loaded"] == 5
    await fetch(loaded_db.owner, "DELETE FROM address WHERE source_file = 'ok.csv'")
    await fetch(loaded_db.owner, "DELETE FROM import_run WHERE source_file = 'ok.csv'")


async def _invoke(cli, args):
    """Run the CLI in a thread (it runs its own event loop)."""
    import asyncio

    return await asyncio.to_thread(CliRunner().invoke, cli, args)


# ---------------------------------------------------------------- tiles


async def test_tile_id_that_does_not_parse(loaded_db, tmp_path, english):
    f = copy_lines(
        TILES,
        tmp_path / "tiles.csv",
        lambda i, line: "CRS3035RES200mN28758E3755600" + line[30:] if i == 5 else line,
    )
    await refused(
        loaded_db,
        import_tiles(loaded_db.owner, f),
        r"tiles\.csv: 1 row\(s\) rejected \(line 5, column id: 'CRS3035RES200mN28758E3755600'"
        r".*not on the 200 m grid",
    )


async def test_duplicated_tile_ids(loaded_db, tmp_path):
    lines = TILES.read_text(encoding="utf-8").splitlines(True)
    f = tmp_path / "tiles.csv"
    f.write_text("".join([*lines[:10], lines[3], *lines[10:]]), encoding="utf-8")
    await refused(
        loaded_db,
        import_tiles(loaded_db.owner, f),
        r"duplicated tile id\(s\): CRS3035RES200m\w+ on lines 4, 11",
    )


async def test_tiles_missing_column_and_wrong_crs(loaded_db, tmp_path):
    f = copy_lines(
        TILES,
        tmp_path / "noid.csv",
        lambda i, line: line.replace("idcar_200m", "carreau") if i == 1 else line,
    )
    await refused(
        loaded_db,
        import_tiles(loaded_db.owner, f),
        r"noid\.csv, line 1: missing required column\(s\): id \(one of: idcar_200m",
    )
    # INSEE's GeoPackage relabelled as WGS84: the squares no longer match its geometry
    import pyogrio

    df = pyogrio.read_dataframe(TILES.with_suffix(".gpkg"))
    df = df.set_crs(4326, allow_override=True)
    wrong = tmp_path / "wrongcrs.gpkg"
    pyogrio.write_dataframe(df, wrong)
    await refused(
        loaded_db,
        import_tiles(loaded_db.owner, wrong),
        r"wrongcrs\.gpkg",
        "CRS is probably wrong",
    )


# ---------------------------------------------------------------- districts


def _fc(features, crs: str | None = None) -> str:
    body = {"type": "FeatureCollection", "features": features}
    if crs:
        body["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(body)


def _feature(code, ring):
    return {
        "type": "Feature",
        "properties": {"codeBureauVote": code, "nomBureauVote": code},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


async def test_districts_in_an_unexpected_crs(loaded_db, tmp_path):
    # Lambert-93 metres in a GeoJSON that (by default) means WGS84
    lambert = tmp_path / "lambert.geojson"
    lambert.write_text(
        _fc(
            [
                _feature(
                    "92002_0099",
                    [[648000, 6850000], [648200, 6850000], [648200, 6850200], [648000, 6850000]],
                )
            ]
        )
    )
    await refused(
        loaded_db,
        import_districts(loaded_db.owner, lambert),
        r"lambert\.geojson",
        "unexpected CRS",
        "not longitudes/latitudes",
    )
    # lon/lat declared as Lambert-93 (the broken file of the source repository)
    mislabelled = tmp_path / "mislabelled.geojson"
    mislabelled.write_text(
        _fc(
            [_feature("92002_0099", [[2.29, 48.75], [2.30, 48.75], [2.30, 48.76], [2.29, 48.75]])],
            crs="urn:ogc:def:crs:EPSG::2154",
        )
    )
    await refused(
        loaded_db,
        import_districts(loaded_db.owner, mislabelled),
        "unexpected CRS",
        "outside the area of use of the declared EPSG:2154",
    )


async def test_invalid_geometry_rejected_or_repaired(loaded_db, make_db, tmp_path):
    flat = [[2.29, 48.75], [2.30, 48.75], [2.31, 48.75], [2.29, 48.75]]  # no area
    bowtie = [[2.29, 48.75], [2.30, 48.76], [2.30, 48.75], [2.29, 48.76], [2.29, 48.75]]
    ok = [[2.29, 48.75], [2.30, 48.75], [2.30, 48.76], [2.29, 48.75]]
    f = tmp_path / "bad.geojson"
    f.write_text(_fc([_feature("92002_0097", ok), _feature("92002_0098", flat)]))
    await refused(
        loaded_db,
        import_districts(loaded_db.owner, f),
        r"bad\.geojson: 1 row\(s\) rejected \(line 2, column geometry: invalid geometry,"
        r" cannot be repaired",
    )
    urls = make_db("geo")
    g = tmp_path / "bowtie.geojson"
    g.write_text(_fc([_feature("92002_0097", ok), _feature("92002_0098", bowtie)]))
    report = await import_districts(urls.owner, g)
    assert report.rows_loaded == 2 and report.details["repaired"] == 1
    note = read_report(report.report_path)
    assert [(n["line"], n["outcome"]) for n in note] == [("2", "repaired")]
    assert "Self-intersection" in note[0]["reason"]
    row = (
        await fetch(
            urls.owner,
            "SELECT ST_IsValid(geom) AS v, ST_NumGeometries(geom) AS n,"
            " ST_SRID(geom_3035) AS s FROM district WHERE code = '92002_0098'",
        )
    )[0]
    assert (row["v"], row["n"], row["s"]) == (True, 2, 3035)


async def test_duplicated_district_code(loaded_db, tmp_path):
    ok = [[2.29, 48.75], [2.30, 48.75], [2.30, 48.76], [2.29, 48.75]]
    f = tmp_path / "dupd.geojson"
    f.write_text(_fc([_feature("92002_0097", ok), _feature("92002_0097", ok)]))
    await refused(
        loaded_db,
        import_districts(loaded_db.owner, f),
        r"dupd\.geojson, line 2: duplicated district code '92002_0097' in features 1 and 2",
    )


async def test_districts_are_read_in_batches(loaded_db, make_db, tmp_path, monkeypatch):
    """Features are read, checked and sent a batch at a time (bounded memory on national files):
    feature numbers, rejected rows and duplicated codes are judged across batches alike."""
    from app.services.reference.imports import districts as districts_module

    monkeypatch.setattr(districts_module, "BATCH", 3)
    flat = [[2.29, 48.75], [2.30, 48.75], [2.31, 48.75], [2.29, 48.75]]

    def ring(i):
        x = 2.29 + i * 0.01
        return [[x, 48.75], [x + 0.01, 48.75], [x + 0.01, 48.76], [x, 48.75]]

    codes = [f"92002_{i:04d}" for i in range(1, 9)]
    features = [_feature(c, flat if i in (2, 6) else ring(i)) for i, c in enumerate(codes, 1)]
    f = tmp_path / "batches.geojson"
    f.write_text(_fc(features))
    urls = make_db("batches")
    report = await import_districts(urls.owner, f, max_rejects=2)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (8, 6, 2)
    assert [r["line"] for r in read_report(report.report_path)] == ["2", "6"]
    loaded = await fetch(urls.owner, "SELECT code FROM district ORDER BY code")
    assert [r["code"] for r in loaded] == [c for i, c in enumerate(codes, 1) if i not in (2, 6)]
    dup = tmp_path / "dupbatch.geojson"
    dup.write_text(_fc([*features[:6], _feature(codes[0], ring(7))]))
    await refused(
        loaded_db,
        import_districts(loaded_db.owner, dup, max_rejects=5),
        r"dupbatch\.geojson, line 7: duplicated district code '92002_0001' in features 1 and 7",
    )


async def test_district_reimport_reprojects_any_crs(make_db, tmp_path):
    """The same contours in Lambert-93 give the same districts (to a millimetre)."""
    import pyogrio

    urls = make_db("crs")
    df = pyogrio.read_dataframe(DISTRICTS).to_crs(2154)
    lam = tmp_path / "contours_2154.gpkg"
    pyogrio.write_dataframe(df, lam)
    r1 = await import_districts(urls.owner, DISTRICTS)
    await fetch(urls.owner, "CREATE TABLE first_load AS SELECT code, geom_3035 FROM district")
    r2 = await import_districts(urls.owner, lam)
    assert r1.rows_loaded == r2.rows_loaded == 91
    assert r2.details["crs"] == "EPSG:2154"
    # the second file replaced the first's rows (same codes) with the same shapes
    worst = (
        await fetch(
            urls.owner,
            "SELECT max(ST_HausdorffDistance(d.geom_3035, f.geom_3035))"
            " AS d, count(*) AS n, max(d.source_file) AS src"
            " FROM district d JOIN first_load f USING (code)",
        )
    )[0]
    assert worst["n"] == 91 and worst["src"] == "contours_2154.gpkg"
    assert worst["d"] < 0.01  # metres


# ---------------------------------------------------------------- results


async def test_results_codes_that_match_nothing(loaded_db, tmp_path):
    f = copy_lines(
        ELECTIONS[2][1],
        tmp_path / "paris.csv",
        lambda i, line: line if i == 1 else f"75056_{i:04d}" + line[10:],
    )
    await refused(
        loaded_db,
        import_results(loaded_db.owner, f, election="paris"),
        r"paris\.csv",
        r"none of the 92 polling-station codes matches a loaded district"
        r" \(e\.g\. 75056_",
    )


async def test_results_missing_column_and_bad_code(loaded_db, tmp_path):
    f = copy_lines(
        ELECTIONS[2][1],
        tmp_path / "noins.csv",
        lambda i, line: line.replace("Inscrits", "Registered", 1) if i == 1 else line,
    )
    await refused(
        loaded_db,
        import_results(loaded_db.owner, f, election="x"),
        r"noins\.csv, line 1: missing required column: Inscrits",
    )
    g = copy_lines(
        ELECTIONS[2][1],
        tmp_path / "badcode.csv",
        lambda i, line: "92002-0001" + line[10:] if i == 2 else line,
    )
    await refused(
        loaded_db,
        import_results(loaded_db.owner, g, election="x"),
        r"line 2, column codeBureauVote: '92002-0001' is not a polling-station code",
    )
    h = tmp_path / "dupbv.csv"
    lines = ELECTIONS[2][1].read_text(encoding="utf-8").splitlines(True)
    h.write_text("".join([*lines, lines[1]]), encoding="utf-8")
    await refused(
        loaded_db,
        import_results(loaded_db.owner, h, election="x"),
        r"dupbv\.csv, line 94: duplicated polling station 92002_0001 on lines 2 and 94",
    )


async def test_results_reimport_replaces_the_election(loaded_db):
    name, path = ELECTIONS[-1]
    before = await snapshot(loaded_db.owner)
    report = await import_results(loaded_db.owner, path, election=name)
    assert report.details["matched"] == 91
    after = await snapshot(loaded_db.owner)
    for table in ("election", "election_result", "election_candidate_result"):
        assert after[table] == before[table]


async def test_reimport_cannot_remove_doors_still_referenced(make_db, tmp_path):
    """A door referenced by campaign data (here a stand-in table) is not silently deleted."""
    urls = make_db("fk")
    src = bal_to_ban(tmp_path / "doors.csv", limit=10)
    await import_addresses(urls.owner, src)
    await fetch(urls.owner, "CREATE TABLE uses_door (address_id bigint REFERENCES address(id))")
    await fetch(
        urls.owner,
        "INSERT INTO uses_door SELECT id FROM address WHERE ban_id = '35047_0001_00001'",
    )
    lines = src.read_text().splitlines(True)
    src.write_text("".join([lines[0], *lines[2:]]))  # the first door is gone from the file
    await refused(
        urls,
        import_addresses(urls.owner, src),
        r"doors\.csv: rows this import would remove or replace are still used by"
        r" uses_door",
    )


def test_reject_reports_cannot_start_a_formula(tmp_path):
    """Reports quote the file's column names and values: a cell (or, for a spreadsheet that
    splits on ',' or ';', a piece of one) starting with = + - @ is neutralised."""
    import csv as csv_module

    from app.services.reference.imports.common import RejectLog

    log = RejectLog(tmp_path / "in.csv", tmp_path / "in.csv.rejects.csv")
    log.reject(3, "=cmd|' /C calc'!A0", "'1;=HYPERLINK(\"http://evil.test\")' is not a number")
    log.skip(4, "-2+3", "@SUM(1)")
    path = log.close()
    text = path.read_text(encoding="utf-8")
    for delimiter in (",", ";"):
        cells = [
            v for row in csv_module.reader(text.splitlines(), delimiter=delimiter) for v in row
        ]
        assert not [v for v in cells if v.startswith(("=", "+", "-", "@"))], cells
    rows = read_report(path)
    assert [r["column"] for r in rows] == ["'=cmd|' /C calc'!A0", "'-2+3"]
    assert rows[1]["reason"] == "'@SUM(1)" and rows[0]["line"] == "3"
