"""Local geocoder on Bruz's real doors, with typed addresses DERIVED from them (see fixtures)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from app.services.people.geocoder import geocode, parse_address
from tests.fixtures_geocode import (
    BRUZ,
    load_doors,
    not_loaded_cases,
    street_only_cases,
    typed_cases,
)


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Equirectangular distance, good to < 0.1 % at a few hundred metres."""
    x = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2)) * 6371008.8
    y = (lat2 - lat1) * 6371008.8
    return math.hypot(math.radians(1) * x, math.radians(1) * y)


@pytest.fixture(scope="module")
async def doors(owner_engine):
    async with owner_engine.connect() as conn:
        rows = await load_doors(conn)
    assert len(rows) > 5000, "Bruz's BAL doors must be loaded by the sample"
    return rows


def test_parse_variants():
    p = parse_address("12 bis, r. de la Noë 35170 Bruz")
    assert (p.housenumber, p.suffix, p.street, p.postcode, p.city) == (
        12,
        "bis",
        "r. de la Noë",
        "35170",
        "Bruz",
    )
    p = parse_address("3B Avenue Alphonse Legault, Bruz")
    assert (p.housenumber, p.suffix, p.city) == (3, "b", "Bruz")
    p = parse_address("Résidence les Pins, 7 ter rue X, 35000 Rennes")
    assert (p.housenumber, p.suffix, p.street, p.city) == (7, "ter", "rue X", "Rennes")
    p = parse_address("14 r de la Gare")  # 'r' is the street type, not a suffix
    assert (p.housenumber, p.suffix, p.street) == (14, None, "r de la Gare")
    p = parse_address("2 avenue Jules Tricault, 35172 Bruz Cedex 2")
    assert (p.housenumber, p.postcode, p.city) == (2, "35172", "Bruz")
    p = parse_address("rue des Acacias, Bruz")
    assert p.housenumber is None and p.street == "rue des Acacias"


async def test_normalisation_in_sql(owner_engine):
    async with owner_engine.connect() as conn:
        got = (
            await conn.execute(
                text(
                    "SELECT porte_norm_name('Allée de la Noë'), porte_norm_name('all. de la noe'), "
                    "porte_norm_name('Bd St-Jean'), porte_norm_name('boulevard Saint Jean'), "
                    "porte_norm_name('R. du Gal Leclerc'), "
                    "porte_norm_name('Rue du Général-Leclerc')"
                )
            )
        ).one()
    assert got[0] == got[1] == "allee noe"
    assert got[2] == got[3] == "boulevard saint jean"
    assert got[4] == got[5] == "rue general leclerc"


async def test_typed_bruz_addresses_found_at_the_door(owner_engine, doors):
    cases = typed_cases(doors)
    assert len(cases) >= 500
    async with owner_engine.connect() as conn:
        res = await geocode(conn, [c.typed for c in cases])
    ok, wrong_commune, misses = 0, 0, []
    for c, r in zip(cases, res, strict=True):
        if r.code_insee is not None and r.code_insee != BRUZ:
            wrong_commune += 1
        if r.level == "housenumber" and metres(c.lon, c.lat, r.lon, r.lat) <= 30:
            ok += 1
        else:
            misses.append((c.kind, c.typed, r.level, r.street))
    rate = ok / len(cases)
    assert wrong_commune == 0
    assert rate >= 0.95, f"{rate:.1%} at the door; first misses: {misses[:10]}"
    # every variant family is exercised and mostly found
    kinds = {c.kind.split("+")[-1] for c in cases}
    assert {"abbreviation", "typo", "wrong_postcode", "lower_no_accents"} <= kinds
    assert sum(1 for c in cases if c.kind.startswith("suffix+")) >= 50


async def test_missing_number_gives_the_street_not_a_door(owner_engine, doors):
    cases = street_only_cases(doors)
    async with owner_engine.connect() as conn:
        res = await geocode(conn, [c.typed for c in cases])
    assert all(r.level == "street" for r in res)
    assert sum(
        r.street == c.expected_street for c, r in zip(cases, res, strict=True)
    ) >= 0.95 * len(cases)
    assert all(r.address_id is None and r.reason.startswith("pas de numéro") for r in res)


async def test_doors_not_loaded_are_answered_honestly(owner_engine, doors):
    cases = not_loaded_cases(doors)
    async with owner_engine.connect() as conn:
        res = await geocode(conn, [c.typed for c in cases])
    for c, r in zip(cases, res, strict=True):
        assert r.level != "housenumber" and r.address_id is None, (c.typed, r)
        if c.kind == "other_commune":
            assert r.level == "none", (c.typed, r)
            assert "département" in r.reason and "aucune porte n'est chargée" in r.reason
        else:
            assert r.level == "street" and r.street == c.expected_street


async def test_interpolated_between_same_side_neighbours(owner_engine, doors):
    # a street with two same-parity numbers far enough apart to leave a gap of real numbers
    by_street: dict[str, list[dict]] = {}
    for d in doors:
        if not d["suffixe"]:
            by_street.setdefault(d["nom_voie"], []).append(d)
    found = None
    for street, ds in sorted(by_street.items()):
        nums = {d["numero"]: d for d in ds}
        for n in sorted(nums):
            if n + 4 in nums and n + 2 not in nums and (n + 1) not in nums and (n + 3) not in nums:
                found = (street, nums[n], nums[n + 4])
                break
        if found:
            break
    assert found, "no gap found in Bruz's numbering"
    street, lo, hi = found
    async with owner_engine.connect() as conn:
        (r,) = await geocode(conn, [f"{lo['numero'] + 2} {street}, 35170 Bruz"])
    assert r.level == "interpolated" and r.address_id is None
    assert abs(r.lon - (lo["lon"] + hi["lon"]) / 2) < 1e-6
    assert abs(r.lat - (lo["lat"] + hi["lat"]) / 2) < 1e-6


async def test_python_and_sql_normalisation_agree(owner_engine):
    """The index is built by porte_norm_name (SQL); queries by norm_name (Python): same keys."""
    from app.services.people.geocoder import norm_name

    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT nom_voie AS raw, voie_norm AS key FROM geocode_street UNION ALL "
                    "SELECT nom_commune, commune_norm FROM geocode_commune UNION ALL "
                    "SELECT x, porte_norm_name(x) FROM unnest(CAST(:x AS text[])) AS x"
                ),
                {
                    "x": [
                        "Œuvre",
                        "Rue de l'Abbaye",
                        "R. St-Exupéry",
                        "Bd Gal De Gaulle",
                        "ÆSOP",
                        "Straße",
                        "rpt du 8 mai 1945",
                        "  all. des  Lilas  ",
                    ]
                },
            )
        ).all()
    assert len(rows) > 300
    bad = [(r.raw, r.key, norm_name(r.raw)) for r in rows if norm_name(r.raw) != r.key]
    assert not bad, bad[:5]


async def test_python_and_sql_city_and_street_keys_agree(owner_engine):
    """Commune keys (porte_norm_city), street cores (porte_street_core) and letters: same in
    Python (queries) and SQL (index), on loaded names and on tricky ones."""
    from app.services.people.geocoder import norm_city, norm_name, street_core

    tricky = ["Paris 1er Arrondissement", "PARIS 01", "Lyon 3ème", "Marseille 13e arrdt",
              "L'Haÿ-les-Roses", "Le Blanc-Mesnil", "St-Ouen-sur-Seine", "Bruz Cedex",
              "Sainte-Marie-aux-Mines", "Les Pavillons-sous-Bois", "Paris 20e"]  # fmt: skip
    streets = ["Rue Maurice Ravel", "Rond-Point de l'Europe", "Grande Rue", "Rue", "Impasse",
               "Allée des Lilas", "bd du 8 mai 1945", "Chemin", "Clos Fleuri"]  # fmt: skip
    async with owner_engine.connect() as conn:
        cities = (
            await conn.execute(
                text(
                    "SELECT nom_commune, commune_norm FROM geocode_commune UNION ALL "
                    "SELECT x, porte_norm_city(x) FROM unnest(CAST(:x AS text[])) AS x"
                ),
                {"x": tricky},
            )
        ).all()
        cores = (
            await conn.execute(
                text(
                    "SELECT voie_norm, voie_core FROM geocode_street UNION ALL "
                    "SELECT porte_norm_name(x), porte_street_core(porte_norm_name(x))"
                    " FROM unnest(CAST(:x AS text[])) AS x"
                ),
                {"x": streets},
            )
        ).all()
    assert len(cities) > len(tricky) and len(cores) > 300
    bad = [(raw, key) for raw, key in cities if norm_city(raw) != key]
    assert not bad, bad[:5]
    bad = [(n, core) for n, core in cores if street_core(n) != core]
    assert not bad, bad[:5]
    assert {norm_city(x) for x in tricky[:2]} == {"paris 1"}
    assert street_core(norm_name("Rue Maurice Ravel")) == "maurice ravel"


async def test_an_unknown_street_says_when_the_communes_doors_are_synthetic(owner_engine):
    """Sceaux's doors in the sample are generated: a real street there is not "misspelt"."""
    async with owner_engine.connect() as conn:
        sceaux, bruz = await geocode(
            conn,
            ["12 rue Houdan, 92330 Sceaux", "12 chemin des Nulle Part, 35170 Bruz"],
        )
    assert sceaux.level == "commune" and sceaux.commune == "Sceaux"
    assert "SYNTHETIC" in sceaux.reason and "porte import addresses" in sceaux.reason
    # Bruz's doors are real (its BAL): the usual reason, and the commune is answered although
    # the BAL gives no postcode to check the typed one against (its département agrees).
    assert bruz.level == "commune" and bruz.commune == "Bruz"
    assert "SYNTHETIC" not in bruz.reason and "vérifiez l'orthographe" in bruz.reason


async def test_a_batch_with_repeated_addresses_answers_each_row_as_one_at_a_time(
    owner_engine, doors
):
    """A household typed twice is looked up once in a batch; every row still gets its own
    answer, in order, the same as that address geocoded alone (the one-address path)."""
    lines = [c.typed for c in typed_cases(doors)[:12]] + ["12 rue Inconnue, 35170 Bruz"]
    batch = [lines[i % len(lines)] for i in (0, 1, 0, 2, 3, 1, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12)]
    batch += lines[:10] + [lines[12]]  # 27 rows: the batch path (custom plans)
    async with owner_engine.connect() as conn:
        together = await geocode(conn, batch)
        alone = {line: (await geocode(conn, [line]))[0] for line in lines}
    assert len(together) == len(batch)
    for line, r in zip(batch, together, strict=True):
        assert r == alone[line], line
    assert together[0] is not together[2]  # each row its own result
