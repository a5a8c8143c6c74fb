"""Imports of real files: Bruz's BAL, a BAN file derived from it, the 92-13 sample."""

from __future__ import annotations

import gzip
import tempfile

import pytest

from app.errors import ImportFailed
from app.services.reference.imports.addresses import import_addresses
from app.services.reference.imports.sample import BRUZ_BAL, load_sample
from tests.fixtures_imports import (
    BAN_HEADER,
    bal_to_ban,
    fetch,
    fetchval,
    read_csv_rows,
    read_report,
    snapshot,
    write_ban,
    write_csv_rows,
)


@pytest.fixture(autouse=True)
def _english():
    """The imports' messages are asserted in English here (French is the default: see
    test_imports_bad_input's command-line test and test_i18n)."""
    from app.i18n import reset_language, set_language

    token = set_language("en")
    yield
    reset_language(token)


# Bruz's bounding box (WGS84) per the data README: lon -1.783..-1.712, lat 47.982..48.068.
BRUZ_BBOX = (-1.7835, 47.9815, -1.7115, 48.0685)


async def test_bruz_bal_gives_5760_doors_inside_the_commune(make_db, tmp_path):
    urls = make_db("bal")
    report = await import_addresses(urls.owner, BRUZ_BAL, report_path=tmp_path / "bruz.rejects.csv")
    assert (report.rows_read, report.rows_loaded) == (5843, 5760)
    assert (report.rows_skipped, report.rows_rejected) == (83, 0)
    rows = read_report(report.report_path)
    assert len(rows) == 83
    assert {r["outcome"] for r in rows} == {"skipped"}
    assert all("99999" in r["reason"] and r["column"] == "numero" for r in rows)
    stats = (
        await fetch(
            urls.owner,
            "SELECT count(*) AS n, count(DISTINCT ban_id) AS ids, min(lon) AS x0, max(lon) AS x1,"
            " min(lat) AS y0, max(lat) AS y1, bool_and(source = 'bal') AS bal,"
            " bool_and(ST_X(geom) = lon AND ST_Y(geom) = lat AND ST_SRID(geom) = 4326) AS g,"
            " bool_and(code_insee = '35047') AS commune FROM address",
        )
    )[0]
    assert stats["n"] == stats["ids"] == 5760
    assert BRUZ_BBOX[0] <= stats["x0"] and stats["x1"] <= BRUZ_BBOX[2]
    assert BRUZ_BBOX[1] <= stats["y0"] and stats["y1"] <= BRUZ_BBOX[3]
    assert stats["bal"] and stats["g"] and stats["commune"]
    suffixes = dict(
        await fetch(
            urls.owner,
            "SELECT suffixe, count(*) FROM address WHERE suffixe IS NOT NULL GROUP BY 1",
        )
    )
    assert suffixes["bis"] == 242 and suffixes["ter"] == 56
    assert sum(suffixes.values()) > 400  # A, B, C… kept too
    row = (await fetch(urls.owner, "SELECT * FROM address WHERE ban_id = '35047_0006_00002_bis'"))[
        0
    ]
    assert (row["numero"], row["suffixe"], row["nom_voie"]) == (2, "bis", "Square de l'Abbé Pierre")
    run = (await fetch(urls.owner, "SELECT * FROM import_run"))[0]
    assert (run["rows_read"], run["rows_loaded"], run["rows_skipped"]) == (5843, 5760, 83)


async def test_ban_csv_gz_commune_filter_and_reimport_keeps_ids(make_db, tmp_path):
    """A BAN-format file DERIVED from Bruz's BAL (tests/fixtures_imports.bal_to_ban)."""
    urls = make_db("ban")
    ban = bal_to_ban(tmp_path / "adresses-35.csv.gz")
    with pytest.raises(ImportFailed, match="filtered out by --commune 92002"):
        await import_addresses(urls.owner, ban, communes="92002")
    assert (await snapshot(urls.owner))["address"][0] == 0

    first = await import_addresses(urls.owner, ban, communes="92002,35047")
    assert (first.rows_read, first.rows_loaded, first.rows_skipped) == (5760, 5760, 0)
    assert first.details["format"] == "ban"
    row = (
        await fetch(
            urls.owner,
            "SELECT numero, suffixe, nom_voie, code_postal, source, source_file FROM address"
            " WHERE ban_id = '35047_0006_00002_bis'",
        )
    )[0]
    assert tuple(row) == (2, "bis", "Square de l'Abbé Pierre", "35170", "ban", ban.name)
    ids = dict(await fetch(urls.owner, "SELECT ban_id, id FROM address"))

    # The same source again, with one door gone and one moved: ids stay, the gone door goes.
    with gzip.open(ban, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    gone = lines[1].split(";")[0]
    moved = lines[2].split(";")
    moved[BAN_HEADER.index("lat")] = "48.0400000"
    with gzip.open(ban, "wt", encoding="utf-8") as fh:
        fh.write("".join([lines[0], ";".join(moved), *lines[3:]]))
    again = await import_addresses(urls.owner, ban, communes="35047")
    assert again.rows_loaded == 5759
    after = dict(await fetch(urls.owner, "SELECT ban_id, id FROM address"))
    assert gone not in after and len(after) == 5759
    assert all(after[k] == ids[k] for k in after)
    assert (
        await fetchval(urls.owner, "SELECT lat FROM address WHERE ban_id = $1", moved[0]) == 48.04
    )
    assert await fetchval(urls.owner, "SELECT count(*) FROM import_run") == 2

    # Another file holding the same ids is refused, naming the file that has them.
    plain = bal_to_ban(tmp_path / "copy.csv", limit=10)
    before = await snapshot(urls.owner)
    with pytest.raises(ImportFailed, match="already loaded from adresses-35.csv.gz"):
        await import_addresses(urls.owner, plain)
    assert await snapshot(urls.owner) == before


async def test_sample_import_and_reimport(make_db, tmp_path, monkeypatch, capsys):
    urls = make_db("smp")
    reports = load_sample(urls.owner, quiet=True, report_dir=tmp_path)
    assert await fetchval(urls.owner, "SELECT count(*) FROM insee_tile") == 504
    assert abs(await fetchval(urls.owner, "SELECT sum(ind) FROM insee_tile") - 154_148) <= 0.5
    assert await fetchval(urls.owner, "SELECT count(*) FROM insee_tile WHERE i_est_200 = 1") == 58
    assert (
        await fetchval(
            urls.owner,
            "SELECT lcog_geo FROM insee_tile WHERE id = 'CRS3035RES200mN2875800E3755600'",
        )
        == "9137792002"
    )
    assert await fetchval(urls.owner, "SELECT count(*) FROM district") == 91
    assert await fetchval(
        urls.owner, "SELECT bool_and(ST_IsValid(geom) AND ST_IsValid(geom_3035)) FROM district"
    )
    for name in ("legislatives_2024_t1", "legislatives_2024_t2", "europeennes_2024"):
        r = reports[name]
        assert (r["stations"], r["matched"], r["unmatched"]) == (92, 91, ["92019_0020"])
        noted = read_report(r["report"])
        assert [(n["outcome"], "92019_0020" in n["reason"]) for n in noted] == [("unmatched", True)]
    assert reports["legislatives_2022_t2"]["format"] == "long"
    joined = await fetch(
        urls.owner,
        "SELECT e.name, count(r.*) AS n, count(d.code) AS joined, sum(r.inscrits) AS inscrits"
        " FROM election e JOIN election_result r ON r.election_id = e.id"
        " LEFT JOIN district d ON d.code = r.district_code GROUP BY e.name",
    )
    by = {r["name"]: r for r in joined}
    assert (by["legislatives_2024_t1"]["n"], by["legislatives_2024_t1"]["joined"]) == (92, 91)
    assert by["legislatives_2024_t1"]["inscrits"] == 89_338
    assert by["europeennes_2024"]["inscrits"] == 89_932
    assert (by["legislatives_2022_t2"]["n"], by["legislatives_2022_t2"]["joined"]) == (91, 91)
    assert (
        await fetchval(
            urls.owner,
            "SELECT count(*) FROM election_candidate_result c"
            " JOIN election e ON e.id = c.election_id"
            " WHERE e.name = 'europeennes_2024' AND c.district_code = '92002_0001'",
        )
        == 38
    )
    # French percentages did not leak into integer columns; 2022 (long) has 2 candidates each
    assert (
        await fetchval(
            urls.owner,
            "SELECT count(*) FROM election_candidate_result c"
            " JOIN election e ON e.id = c.election_id"
            " WHERE e.name = 'legislatives_2022_t2'",
        )
        == 182
    )

    # Synthetic doors: labelled, inside the contours, in proportion to households.
    doors = (
        await fetch(
            urls.owner,
            "SELECT count(*) AS n, sum(households) AS hh, count(*) FILTER (WHERE households > 1)"
            " AS buildings, bool_and(ban_id LIKE 'synthetic_%' AND nom_voie LIKE '%synthétique%')"
            " AS labelled FROM address WHERE source = 'synthetic'",
        )
    )[0]
    assert doors["labelled"] and doors["n"] > 10_000 and doors["buildings"] > 1_000
    inside = await fetchval(
        urls.owner,
        "SELECT count(*) FROM address a WHERE a.source = 'synthetic' AND EXISTS"
        " (SELECT 1 FROM district d WHERE ST_Intersects(d.geom, a.geom))",
    )
    assert inside == doors["n"]
    # households of the tiles lying within the constituency ≈ households at synthetic doors
    men_inside = await fetchval(
        urls.owner,
        "SELECT sum(t.men * ST_Area(ST_Intersection(t.geom, u.g)) / ST_Area(t.geom))"
        " FROM insee_tile t, (SELECT ST_Union(geom_3035) AS g FROM district) u"
        " WHERE ST_Intersects(t.geom, u.g)",
    )
    assert abs(doors["hh"] - men_inside) / men_inside < 0.05
    assert await fetchval(urls.owner, "SELECT count(*) FROM address WHERE source = 'bal'") == 5760

    before = await snapshot(urls.owner)
    # Without a report folder: a temporary one, removed at the end; --quiet keeps the summaries,
    # which quote the rows a file skipped and point to no report when nothing was rejected.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    capsys.readouterr()
    load_sample(urls.owner, quiet=True)
    printed = capsys.readouterr().out
    assert list(scratch.iterdir()) == []
    # (French: the sample's imports run in their own threads, in the default language)
    assert "le bureau de vote 92019_0020 a des résultats mais pas de contour" in printed
    assert "sont listées dans" not in printed  # nothing rejected: no report named
    assert "0 rejetées" in printed
    assert "Tile-to-district allocation refreshed" in printed
    after = await snapshot(urls.owner)
    assert {k: v for k, v in after.items() if k != "import_run"} == {
        k: v for k, v in before.items() if k != "import_run"
    }
    assert after["import_run"][0] == 2 * before["import_run"][0]

    # Real doors for a commune replace its synthetic doors (and only those).
    real = tmp_path / "adresses-92071-test.csv"
    real.write_text(
        ";".join(BAN_HEADER)
        + "\n"
        + "".join(
            f"92071_0001_0000{n};;{n};;Rue Houdan;92330;92071;Sceaux;;;;;2.2903;48.7775{n};"
            + ";" * 8
            + "\n"
            for n in (1, 2, 3)
        ),
        encoding="utf-8",
    )
    rep = await import_addresses(urls.owner, real)
    assert rep.rows_loaded == 3 and "synthetic demo doors of 92071" in rep.notes[0]
    left = dict(
        await fetch(
            urls.owner,
            "SELECT code_insee, count(*) FROM address WHERE source = 'synthetic' GROUP BY 1",
        )
    )
    assert "92071" not in left and set(left) == {"92002", "92014", "92019"}


async def test_values_with_backslash_tab_newline_are_stored_verbatim(make_db, tmp_path):
    urls = make_db("esc")
    odd = 'Allée "des\\Tilleuls"\tbis\nfin'
    f = write_ban(
        tmp_path / "odd.csv",
        [
            dict(
                id="35047_9999_00001",
                numero="1",
                nom_voie=odd,
                code_insee="35047",
                lon="-1.75",
                lat="48.02",
            )
        ],
    )
    report = await import_addresses(urls.owner, f)
    assert report.rows_loaded == 1
    got = (await fetch(urls.owner, "SELECT nom_voie, suffixe, code_postal FROM address"))[0]
    assert tuple(got) == (odd, None, None)


GEOCODE_RECOUNT = [
    # What migrations 0005 and 0018 compute from the whole table.
    "SELECT code_insee, nom_voie, voie_norm, n FROM geocode_street ORDER BY 1, 2",
    "SELECT code_insee, nom_voie, porte_norm_name(nom_voie), count(*)::int FROM address"
    " WHERE code_insee IS NOT NULL AND nom_voie IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT code_insee, code_postal, nom_commune, nom_ancienne, commune_norm, n"
    " FROM geocode_commune ORDER BY 1, 2, 3, 4",
    "SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),"
    " coalesce(nom_ancienne_commune, ''), porte_norm_city(coalesce(nom_commune, '')),"
    " count(*)::int FROM address WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3, 4"
    " ORDER BY 1, 2, 3, 4",
]
TRIGGERS = (
    "SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE tgrelid = 'address'::regclass AND NOT tgisinternal ORDER BY 1"
)


async def assert_geocode_index_matches_doors(owner_url: str) -> None:
    """The geocoder's derived tables equal a recount from ``address``."""
    q = GEOCODE_RECOUNT
    streets, communes = await fetch(owner_url, q[0]), await fetch(owner_url, q[2])
    assert streets and [tuple(r) for r in streets] == [
        tuple(r) for r in await fetch(owner_url, q[1])
    ]
    assert [tuple(r) for r in communes] == [tuple(r) for r in await fetch(owner_url, q[3])]


async def test_bulk_load_rebuilds_every_index_and_still_catches_duplicates(make_db, tmp_path):
    """Large first loads drop the secondary indexes and the geocoder's insert trigger, number
    the ids themselves, and put everything back (forced here)."""
    urls = make_db("bulk")
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'address' ORDER BY 1"
    before = [tuple(r) for r in await fetch(urls.owner, indexes)]
    triggers = [tuple(r) for r in await fetch(urls.owner, TRIGGERS)]
    # A door loaded first, the ordinary way: the bulk load's ids must follow it.
    await import_addresses(urls.owner, bal_to_ban(tmp_path / "one.csv", prefix="o", limit=1))
    rep = await import_addresses(
        urls.owner, BRUZ_BAL, defer_indexes=True, report_path=tmp_path / "r.csv"
    )
    rebuilt = [i for i in before if i[0] != "address_pkey" and " WHERE " not in i[1]]
    assert rep.rows_loaded == 5760 and rep.details["indexes_rebuilt"] == len(rebuilt)
    assert rep.rows_skipped == 83 and len(read_report(tmp_path / "r.csv")) == 83
    assert [tuple(r) for r in await fetch(urls.owner, indexes)] == before
    assert [tuple(r) for r in await fetch(urls.owner, TRIGGERS)] == triggers
    await assert_geocode_index_matches_doors(urls.owner)
    lo, hi, n = (await fetch(urls.owner, "SELECT min(id), max(id), count(*) FROM address"))[0]
    assert (n, hi - lo + 1) == (5761, 5761)  # the first door, then 5,760 numbered in file order
    lines = bal_to_ban(tmp_path / "b.csv", prefix="d", limit=20).read_text().splitlines(True)
    dup = tmp_path / "dup.csv"
    dup.write_text("".join([*lines, lines[2]]))
    snap = await snapshot(urls.owner)
    with pytest.raises(ImportFailed, match=r"duplicated id 'd35047_\w+' on lines 3, 22"):
        await import_addresses(urls.owner, dup, defer_indexes=True)
    assert await snapshot(urls.owner) == snap
    assert [tuple(r) for r in await fetch(urls.owner, indexes)] == before
    assert [tuple(r) for r in await fetch(urls.owner, TRIGGERS)] == triggers
    # The sequence moved past the numbered ids: the next ordinary load follows them.
    await import_addresses(urls.owner, tmp_path / "b.csv")
    assert await fetchval(urls.owner, "SELECT min(id) FROM address WHERE ban_id LIKE 'd%'") > hi
    await assert_geocode_index_matches_doors(urls.owner)


async def test_bulk_load_reports_rejected_rows_and_reimport_is_idempotent(make_db, tmp_path):
    """Bad rows under the bulk path: named in the report, the others loaded with --max-rejects;
    importing the same file again changes nothing (upsert by id)."""
    urls = make_db("bulkrej")
    src = bal_to_ban(tmp_path / "b.csv", prefix="r", limit=300).read_text().splitlines(True)
    lat = BAN_HEADER.index("lat")
    bad = src[10].split(";")
    bad[lat] = "91.5"  # off the globe
    src[10] = ";".join(bad)
    src[20] = src[20].replace(";", ",", 3)  # wrong delimiter: fewer fields
    f = tmp_path / "bad.csv"
    f.write_text("".join(src))
    snap = await snapshot(urls.owner)
    with pytest.raises(ImportFailed, match=r"2 row\(s\) rejected \(line 11, column lon/lat"):
        await import_addresses(urls.owner, f, defer_indexes=True)
    assert await snapshot(urls.owner) == snap
    assert [r["line"] for r in read_report(tmp_path / "bad.csv.rejects.csv")] == ["11", "21"]
    rep = await import_addresses(urls.owner, f, defer_indexes=True, max_rejects=2)
    assert (rep.rows_read, rep.rows_loaded, rep.rows_rejected) == (300, 298, 2)
    await assert_geocode_index_matches_doors(urls.owner)
    loaded = await snapshot(urls.owner)
    geocode = [
        await fetch(urls.owner, GEOCODE_RECOUNT[0]),
        await fetch(urls.owner, GEOCODE_RECOUNT[2]),
    ]
    again = await import_addresses(urls.owner, f, defer_indexes=True, max_rejects=2)
    assert again.rows_loaded == 298
    after = await snapshot(urls.owner)
    assert after["address"] == loaded["address"]  # same rows, same ids, same values
    assert after["import_run"][0] == loaded["import_run"][0] + 1
    assert geocode == [
        await fetch(urls.owner, GEOCODE_RECOUNT[0]),
        await fetch(urls.owner, GEOCODE_RECOUNT[2]),
    ]


async def test_blocks_of_any_size_give_the_same_doors_and_report(make_db, tmp_path, monkeypatch):
    """Plain lines are parsed in vectorised blocks, the rest row by row: a quoted value running
    over lines and over a block boundary, a blank line, CRLF, bad rows; tiny blocks and one block
    give the same doors and the same rejected lines."""
    from app.services.reference.imports import addresses as addresses_module

    urls = make_db("blocks")
    src = bal_to_ban(tmp_path / "b.csv", prefix="k", limit=120).read_text().splitlines(True)
    voie = BAN_HEADER.index("nom_voie")
    row = src[40].split(";")
    row[voie] = '"Allée ""des Tilleuls""\nsuite;fin"'
    src[40] = ";".join(row)  # line 41, runs over line 42
    src[60] = src[60].replace(";", ";;", 1)  # line 61 (62 in the file): one field too many
    src[80] = src[80].replace(";48.", ";x48.", 1)  # line 82 in the file: lat not a number
    src.insert(90, "\n")  # a blank line (92 in the file)
    src[100] = src[100].rstrip("\n") + "\r\n"
    f = tmp_path / "mixed.csv"
    f.write_text("".join(src), newline="")
    docs = (
        "SELECT ban_id, numero, suffixe, nom_voie, code_postal, code_insee, nom_commune, lon, lat,"
        " households, source FROM address ORDER BY ban_id"
    )
    results = []
    for size in (97, 4096, 1 << 20):
        monkeypatch.setattr(addresses_module, "BLOCK_CHARS", size)
        rep = await import_addresses(urls.owner, f, max_rejects=5)
        report = [(r["line"], r["column"]) for r in read_report(tmp_path / "mixed.csv.rejects.csv")]
        results.append(
            (
                rep.rows_read,
                rep.rows_loaded,
                report,
                [tuple(r) for r in await fetch(urls.owner, docs)],
            )
        )
        await fetch(urls.owner, "DELETE FROM address")
    assert results[0] == results[1] == results[2]
    read, loaded, report, doors = results[0]
    assert (read, loaded, report) == (120, 118, [("62", ""), ("82", "lon/lat")])
    assert 'Allée "des Tilleuls"\nsuite;fin' in [d[3] for d in doors]


async def test_tiles_from_geopackage_equal_tiles_from_csv(make_db, tmp_path):
    """INSEE's GeoPackage (EPSG:2154) and CSV give the same tiles; every square checked."""
    from app.services.reference.imports.sample import TILES, TILES_GPKG
    from app.services.reference.imports.tiles import import_tiles

    a, b = make_db("tcsv"), make_db("tgpkg")
    await import_tiles(a.owner, TILES, report_path=tmp_path / "a.csv")
    rep = await import_tiles(b.owner, TILES_GPKG, report_path=tmp_path / "b.csv")
    assert (rep.rows_read, rep.rows_loaded, rep.rows_rejected) == (504, 504, 0)
    q = (
        "SELECT md5(string_agg((t.id, ST_AsEWKB(t.geom), t.ind, t.men, t.men_pauv, t.ind_snv,"
        " t.log_soc, t.ind_80p, t.i_est_200, t.lcog_geo)::text, '|' ORDER BY t.id))"
        " FROM insee_tile t"
    )
    assert await fetchval(a.owner, q) == await fetchval(b.owner, q)
    corners = await fetchval(
        b.owner,
        "SELECT ST_AsText(geom) FROM insee_tile WHERE id = 'CRS3035RES200mN2875800E3755600'",
    )
    assert corners == (
        "POLYGON((3755600 2875800,3755600 2876000,3755800 2876000,3755800 2875800,3755600 2875800))"
    )


async def test_ministry_layout_without_our_key_column(make_db, tmp_path):
    """The Ministry's own layout: ';', cp1252, no codeBureauVote (built from commune + BV)."""
    from app.services.reference.imports.districts import import_districts
    from app.services.reference.imports.results import import_results
    from app.services.reference.imports.sample import DISTRICTS, ELECTIONS

    urls = make_db("min")
    await import_districts(urls.owner, DISTRICTS, report_path=tmp_path / "d.csv")
    name, src = ELECTIONS[2]  # legislatives_2024_t1, wide
    f = tmp_path / "resultats-par-bureau.csv"
    rows = read_csv_rows(src)
    write_csv_rows(f, [r[1:] for r in rows], delimiter=";", encoding="cp1252")
    rep = await import_results(
        urls.owner, f, election="t1", encoding="cp1252", report_path=tmp_path / "r.csv"
    )
    assert (rep.details["stations"], rep.details["matched"]) == (92, 91)
    assert rep.details["unmatched"] == ["92019_0020"]
    total = await fetchval(urls.owner, "SELECT sum(inscrits) FROM election_result")
    assert total == 89_338
    gaillard = await fetchval(
        urls.owner,
        "SELECT voix FROM election_candidate_result WHERE district_code = '92002_0001'"
        " AND label = 'GAILLARD Brice'",
    )
    assert gaillard == 237
