"""The geocoder across communes: typos in the commune or postcode, arrondissements,
former communes, streets typed without or with odd types, suffixes glued or spaced, and the
honesty rule (no door in another commune when the commune cannot be told apart).

The communes are real (names, INSEE codes and postcodes as in INSEE's COG); the doors are
SYNTHETIC, written here (``source=synthetic``), a few per street.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.services.people.geocoder import (
    geocode,
    norm_city,
    parse_address,
    street_core,
)
from app.services.reference.imports.addresses import import_addresses

# (code_insee, nom_commune, code_postal, former commune code, former commune name, lon, lat)
COMMUNES = [
    ("75101", "Paris 1er Arrondissement", "75001", "", "", 2.336, 48.862),
    ("75104", "Paris 4e Arrondissement", "75004", "", "", 2.357, 48.854),
    ("75111", "Paris 11e Arrondissement", "75011", "", "", 2.380, 48.859),
    ("69383", "Lyon 3e Arrondissement", "69003", "", "", 4.850, 45.760),
    ("93057", "Les Pavillons-sous-Bois", "93320", "", "", 2.503, 48.907),
    ("93062", "Le Raincy", "93340", "", "", 2.518, 48.899),
    ("78551", "Saint-Germain-en-Laye", "78100", "", "", 2.093, 48.898),
    ("78550", "Saint-Germain-de-la-Grange", "78640", "", "", 1.902, 48.834),
    ("49301", "Sèvremoine", "49450", "49301", "Saint-Macaire-en-Mauges", -0.994, 47.123),
    ("49301", "Sèvremoine", "49660", "49350", "Torfou", -1.117, 47.037),
    ("91619", "Torfou", "91730", "", "", 2.226, 48.525),
    ("33390", "Sainte-Colombe", "33350", "", "", -0.061, 44.879),
    ("77404", "Sainte-Colombe", "77650", "", "", 3.259, 48.531),
]
STREETS = {
    "75101": ["Rue de Rivoli"],
    "75104": ["Rue de Rivoli"],
    "75111": ["Boulevard Voltaire", "Rue Oberkampf"],
    "69383": ["Cours Gambetta"],
    "93057": ["Allée de la Fontaine", "Avenue Aristide Briand"],
    "93062": ["Avenue de la Résistance", "Chemin des Bourdons"],
    "78551": ["Rue au Pain", "Impasse des Lilas"],
    "78550": ["Rue de la Gare", "Impasse des Lilas"],
    "49450": ["Rue de l'Église", "Rue du Commerce"],
    "49660": ["Rue de l'Église", "Rue des Mauges"],
    "91619": ["Rue de l'Église", "Grande Rue"],
    "33390": ["Rue de la Mairie"],
    "77404": ["Rue de la Mairie", "Rue des Écoles"],
}
# numbers per street: 1..40 (1..20 in Sainte-Colombe 33), and a few suffixed doors; Rivoli has
# 1..40 in the 1st, 41..80 in the 4th
SUFFIXES = {58: "bis", 59: "D"}
HEADER = (
    "id;numero;rep;nom_voie;code_postal;code_insee;nom_commune;code_insee_ancienne_commune;"
    "nom_ancienne_commune;lon;lat"
)


def synthetic_ban(path) -> dict:
    """Write the SYNTHETIC BAN file; return {(code_postal, street, number, rep): (lon, lat)}."""
    lines, doors = [HEADER], {}
    for code, nom, pc, fcode, fname, lon0, lat0 in COMMUNES:
        key = pc if code == "49301" else code
        for si, street in enumerate(STREETS[key]):
            lo, hi = (41, 80) if code == "75104" else (1, 20) if code == "33390" else (1, 40)
            nums = [(n, "") for n in range(lo, hi + 1)] + [(n, s) for n, s in SUFFIXES.items()]
            for n, rep in nums:
                lon = lon0 + si * 0.003 + n * 0.0002 + (0.00005 if rep else 0)
                lat = lat0 + (0.0001 if n % 2 else -0.0001)
                ident = f"{code}_{pc}_{si}_{n}{rep}"
                lines.append(
                    f"{ident};{n};{rep};{street};{pc};{code};{nom};{fcode};{fname};"
                    f"{lon:.6f};{lat:.6f}"
                )
                doors[(pc, street, n, rep)] = (round(lon, 6), round(lat, 6))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return doors


@pytest.fixture(scope="module")
async def france(make_db, tmp_path_factory):
    urls = make_db("france")
    path = tmp_path_factory.mktemp("ban") / "ban-synthetic.csv"
    doors = synthetic_ban(path)
    await import_addresses(urls.owner, path, source="synthetic")
    engine = create_async_engine(urls.owner, pool_size=1)
    yield engine, doors
    await engine.dispose()


async def _one(engine, line: str):
    async with engine.connect() as conn:
        return (await geocode(conn, [line]))[0]


def _at(doors, r, pc, street, n, rep=""):
    lon, lat = doors[(pc, street, n, rep)]
    return r.level == "housenumber" and abs(r.lon - lon) < 1e-6 and abs(r.lat - lat) < 1e-6


# ------------------------------------------------------------------ pure functions
def test_city_and_street_keys():
    assert norm_city("Paris 1er Arrondissement") == norm_city("PARIS 01") == "paris 1"
    assert norm_city("Paris 11ème") == norm_city("paris 11e arrondissement") == "paris 11"
    assert norm_city("Les Pavillons-sous-Bois") == norm_city("pavillons sous bois")
    assert norm_city("St-Germain-en-Laye") == norm_city("Saint Germain en Laye")
    assert street_core("rue maurice ravel") == "maurice ravel"
    assert street_core("grande rue") == "grande rue" and street_core("rue") == "rue"


def test_parse_postcodes_and_suffixes():
    p = parse_address("58BIS rue au Pain 78100 Saint-Germain-en-Laye")
    assert (p.housenumber, p.suffix, p.street, p.postcode) == (58, "bis", "rue au Pain", "78100")
    p = parse_address("388 D, Rue X, 7820 Mareil")
    assert (p.housenumber, p.suffix, p.postcode, p.city) == (388, "d", "7820", "Mareil")
    p = parse_address("12 rue du 8 mai 1945, Bruz")  # a year, not a postcode
    assert (p.postcode, p.city, p.street) == (None, "Bruz", "rue du 8 mai 1945")
    p = parse_address("3 Rue de Rivoli 75004 Paris Cedex 04")
    assert (p.postcode, p.city) == ("75004", "Paris")


# ------------------------------------------------------------------ communes despite typos
@pytest.mark.parametrize(
    "line",
    [
        "12 Avenue Aristide Briand, 93320 Les Pavillons-sous-Bois",  # as written
        "12 Avenue Aristide Briand, 93320 Pavillons-sous-Boi",  # slip, no article
        "12 Avenue Aristide Briand, Les Pavilons sous Bois",  # slip, no postcode
        "12 av Aristide Briand 9332 Les Pavillons-sous-Bois",  # a postcode digit missing
        "12 Avenue Aristide Briand, 93230 Les Pavillons-sous-Bois",  # two digits swapped
        "12 Avenue Aristide Briand, 93820 Pavillons sous Bois",  # a digit wrong
        "12 AVENUE ARISTIDE BRIAND LES PAVILLONS SOUS BOIS",  # no comma, no postcode
    ],
)
async def test_commune_found_despite_typos(france, line):
    engine, doors = france
    r = await _one(engine, line)
    assert r.code_insee == "93057", (line, r)
    assert _at(doors, r, "93320", "Avenue Aristide Briand", 12), (line, r)


async def test_saint_st_and_close_names(france):
    engine, doors = france
    r = await _one(engine, "3 rue au Pain, St Germain en Laye")
    assert _at(doors, r, "78100", "Rue au Pain", 3), r
    # "Impasse des Lilas" exists in both Saint-Germain: the postcode tells them apart
    r = await _one(engine, "5 Impasse des Lilas, 78640 St-Germain-de-la-Grnge")
    assert r.code_insee == "78550" and _at(doors, r, "78640", "Impasse des Lilas", 5), r


async def test_arrondissements(france):
    engine, doors = france
    r = await _one(engine, "45 rue de Rivoli, 75004 Paris")
    assert r.code_insee == "75104" and _at(doors, r, "75004", "Rue de Rivoli", 45), r
    r = await _one(engine, "7 rue de Rivoli, Paris 1er")
    assert r.code_insee == "75101" and _at(doors, r, "75001", "Rue de Rivoli", 7), r
    # no postcode: the street crosses arrondissements, the number tells which
    r = await _one(engine, "60 rue de Rivoli Paris")
    assert r.code_insee == "75104" and _at(doors, r, "75004", "Rue de Rivoli", 60), r
    r = await _one(engine, "3 rue Oberkampf, 75011 PARIS 11E")
    assert _at(doors, r, "75011", "Rue Oberkampf", 3), r
    r = await _one(engine, "9 cours Gambetta 69003 Lyon")
    assert r.code_insee == "69383" and _at(doors, r, "69003", "Cours Gambetta", 9), r
    r = await _one(engine, "9 cours Gambetta, Lyon 3e arrondissement")
    assert r.code_insee == "69383", r


async def test_former_communes(france):
    engine, doors = france
    # the same street in two former communes of Sèvremoine: the former name decides
    r = await _one(engine, "4 rue de l'Église, Torfou 49660")
    assert r.code_insee == "49301" and _at(doors, r, "49660", "Rue de l'Église", 4), r
    r = await _one(engine, "4 rue de l'Eglise, Saint-Macaire-en-Mauges")
    assert r.code_insee == "49301" and _at(doors, r, "49450", "Rue de l'Église", 4), r
    r = await _one(engine, "4 rue des Mauges, Sevremoine")
    assert _at(doors, r, "49660", "Rue des Mauges", 4), r
    # "Torfou" is also a commune of Essonne: its own streets are found there
    r = await _one(engine, "6 Grande Rue, 91730 Torfou")
    assert r.code_insee == "91619" and _at(doors, r, "91730", "Grande Rue", 6), r


@pytest.mark.parametrize(
    "line,street,number,rep",
    [
        ("12 bd Voltaire, 75011 Paris", "Boulevard Voltaire", 12, ""),
        ("12 bld. Voltaire 75011 Paris", "Boulevard Voltaire", 12, ""),
        ("12 Voltaire, 75011 Paris", "Boulevard Voltaire", 12, ""),  # no street type
        ("14 ch. des Bourdons, 93340 Le Raincy", "Chemin des Bourdons", 14, ""),
        ("14 des Bourdons, 93340 Le Raincy", "Chemin des Bourdons", 14, ""),
        ("14 av. de la Resistance 93340 Raincy", "Avenue de la Résistance", 14, ""),
        ("2 imp des Lilas, 78100 Saint-Germain-en-Laye", "Impasse des Lilas", 2, ""),
        ("58BIS Boulevard Voltaire 75011 Paris", "Boulevard Voltaire", 58, "bis"),
        ("58 b bd Voltaire, 75011 Paris", "Boulevard Voltaire", 58, "bis"),
        ("59 D rue Oberkampf, 75011 Paris", "Rue Oberkampf", 59, "D"),
        ("59d rue Oberkampf, 75011 Paris", "Rue Oberkampf", 59, "D"),
    ],
)
async def test_street_types_and_suffixes(france, line, street, number, rep):
    engine, doors = france
    r = await _one(engine, line)
    pc = "75011" if "Paris" in line else ("93340" if "Raincy" in line else "78100")
    assert _at(doors, r, pc, street, number, rep), (line, r)


# ------------------------------------------------------------------ honesty
async def test_no_guess_in_another_commune(france, english):
    engine, _doors = france
    # Villiers-Saint-Frédéric shares 78640 with Saint-Germain-de-la-Grange, whose doors are
    # loaded (with a "Rue de la Gare"), but its own are not
    r = await _one(engine, "1 rue de la Gare, 78640 Villiers-Saint-Frédéric")
    assert r.level == "none" and r.code_insee is None, r
    # two loaded communes named Sainte-Colombe with the same street, no postcode: no door
    r = await _one(engine, "3 rue de la Mairie, Sainte-Colombe")
    assert r.level == "none" and r.address_id is None and r.code_insee is None, r
    assert "several communes" in r.reason and "département" not in r.reason
    # the postcode (even a digit off) tells them apart
    r = await _one(engine, "3 rue de la Mairie, 77650 Sainte-Colombe")
    assert r.code_insee == "77404" and r.level == "housenumber", r
    r = await _one(engine, "3 rue de la Mairie, 3350 Sainte-Colombe")
    assert r.code_insee == "33390" and r.level == "housenumber", r
    # a street only one of them has; a number only one of them has
    r = await _one(engine, "3 rue des Ecoles, Sainte-Colombe")
    assert r.code_insee == "77404" and r.level == "housenumber", r
    r = await _one(engine, "30 rue de la Mairie, Sainte-Colombe")
    assert r.code_insee == "77404" and r.level == "housenumber", r
    # a commune of another département, not loaded, whose name is close to nothing loaded
    r = await _one(engine, "12 Avenue Aristide Briand, 94140 Alfortville")
    assert r.level == "none" and r.code_insee is None, r


async def test_geocode_commune_follows_imports(france):
    """The commune index holds the former communes and arrondissement cities of the doors."""
    engine, _doors = france
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT code_insee, nom_ancienne, ancienne_norm, city_code, city_norm, dept"
                    " FROM geocode_commune WHERE code_insee IN ('49301', '75104')"
                    " ORDER BY 1, 2"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("49301", "Saint-Macaire-en-Mauges", "saint macaire en mauges", "49301", "sevremoine",
         "49"),
        ("49301", "Torfou", "torfou", "49301", "sevremoine", "49"),
        ("75104", "", "", "75056", "paris", "75"),
    ]  # fmt: skip


async def test_bal_communes_deleguees_through_the_bulk_load(make_db, tmp_path):
    """A BAL file's ``commune_deleguee_nom`` is the former commune; the bulk path (indexes and
    geocoder trigger dropped, counts added once) indexes it like the trigger does."""
    from tests.test_imports import assert_geocode_index_matches_doors

    urls = make_db("bal_deleguee")
    header = (
        "cle_interop;commune_insee;commune_nom;commune_deleguee_insee;commune_deleguee_nom;"
        "voie_nom;numero;suffixe;long;lat"
    )
    rows = [header]
    for fcode, fname, dlon in (("49350", "Torfou", 0.0), ("49301", "Saint-Macaire-en-Mauges", 0.1)):
        for n in range(1, 11):
            rows.append(
                f"49301_{fcode}_{n:05d};49301;Sèvremoine;{fcode};{fname};Rue de l'Église;{n};;"
                f"{-1.1 + dlon + n * 0.0002:.6f};47.05"
            )
    path = tmp_path / "bal-synthetic.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rep = await import_addresses(urls.owner, path, defer_indexes=True)
    assert rep.rows_loaded == 20
    await assert_geocode_index_matches_doors(urls.owner)
    engine = create_async_engine(urls.owner, pool_size=1)
    try:
        r = await _one(engine, "7 rue de l'Eglise, Saint Macaire en Mauges")
        assert r.level == "housenumber" and abs(r.lon - (-1.0 + 7 * 0.0002)) < 1e-6, r
        r = await _one(engine, "7 rue de l'Église, Torfou")
        assert r.level == "housenumber" and abs(r.lon - (-1.1 + 7 * 0.0002)) < 1e-6, r
    finally:
        await engine.dispose()
