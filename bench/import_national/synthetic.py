"""SYNTHETIC national-size reference files, written in bounded memory (1 M rows at a time).

Not real data: every commune, street, door, tile and polling station is invented (names say
SYNTHETIQUE, file names start with SYNTHETIC). The shapes and sizes follow the real files:

- BAN (``adresses-france.csv.gz``): the 23 columns of the BAN CSV, ``;``-separated, gzip, sorted
  by commune then street like the real file; ~35,000 communes and one street for 12 doors
  (26 M doors: ~2.2 M streets, as the real BAN has);
- Filosofi 2019 200 m tiles: the CSV's 32 columns (``idcar_200m``, ``lcog_geo``, counts);
- polling-station contours: GeoJSON with the Etalab file's properties (``codeBureauVote``,
  ``nomBureauVote``, ``codeCommune``, ``nomCommune``), one star-shaped polygon of ``vertices``
  points each (the real 92-13 extract averages 179).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from app.geo.insee import FILOSOFI_COUNTS

BAN_HEADER = [
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom_voie", "certification_commune", "cad_parcelles",
]  # fmt: skip
TILE_COUNTS = FILOSOFI_COUNTS
COMMUNES = 35_000
DOORS_PER_STREET = 12
NAMES = 600_000  # distinct street names at most
STREET_TYPES = ["Rue", "Avenue", "Chemin", "Impasse", "Place", "Allée", "Route", "Boulevard"]
CHUNK = 1_000_000


def _commune_codes(index: np.ndarray) -> pa.Array:
    """A valid 5-character INSEE code per commune index (départements 01-95, 400 each)."""
    dep = 1 + index // 400
    num = 1 + index % 400
    return pc.binary_join_element_wise(
        pc.utf8_lpad(pa.array(dep).cast(pa.string()), 2, "0"),
        pc.utf8_lpad(pa.array(num).cast(pa.string()), 3, "0"),
        "",
    )


def _fixed(values: np.ndarray, digits: int) -> pa.Array:
    return pc.round(pa.array(values), digits).cast(pa.string())


def write_ban(path: Path, doors: int, seed: int = 13) -> int:
    """A SYNTHETIC BAN CSV (gzip) of ``doors`` rows; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    per_commune = max(DOORS_PER_STREET, doors // COMMUNES)
    # street names repeat across communes ("Grande Rue"): drawn from a Zipf law
    names = rng.zipf(1.3, 1 << 20) % NAMES
    # one centre per commune, anywhere in mainland France's box
    centre_lon = rng.uniform(-4.5, 8.0, COMMUNES + 1)
    centre_lat = rng.uniform(42.5, 51.0, COMMUNES + 1)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write((";".join(BAN_HEADER) + "\n").encode())
        for start in range(0, doors, CHUNK):
            i = np.arange(start, min(doors, start + CHUNK), dtype=np.int64)
            n = len(i)
            commune = np.minimum(i // per_commune, COMMUNES)
            street = i // DOORS_PER_STREET
            code = _commune_codes(commune)
            empty = pa.array([""] * n)
            lon = centre_lon[commune] + rng.normal(0, 0.01, n)
            lat = centre_lat[commune] + rng.normal(0, 0.01, n)
            numero = (i % DOORS_PER_STREET) * 2 + 1
            name_id = names[street % len(names)]
            name = pc.binary_join_element_wise(
                pa.array(np.array(STREET_TYPES)[name_id % len(STREET_TYPES)]),
                " SYNTHETIQUE ",
                pa.array(name_id).cast(pa.string()),
                "",
            )
            commune_name = pc.binary_join_element_wise(
                "Commune SYNTHETIQUE ", pa.array(commune).cast(pa.string()), ""
            )
            ident = pc.binary_join_element_wise(code, "_syn", pa.array(i).cast(pa.string()), "")
            cols = {
                "id": ident,
                "id_fantoir": empty,
                "numero": pa.array(numero).cast(pa.string()),
                "rep": empty,
                "nom_voie": name,
                "code_postal": code,
                "code_insee": code,
                "nom_commune": commune_name,
                "code_insee_ancienne_commune": empty,
                "nom_ancienne_commune": empty,
                "x": _fixed(lon * 70_000 + 700_000, 2),
                "y": _fixed(lat * 110_000 + 1_600_000, 2),
                "lon": _fixed(lon, 7),
                "lat": _fixed(lat, 7),
                "type_position": pa.array(["entrée"] * n),
                "alias": empty,
                "nom_ld": empty,
                "libelle_acheminement": pc.utf8_upper(commune_name),
                "nom_afnor": pc.utf8_upper(name),
                "source_position": pa.array(["commune"] * n),
                "source_nom_voie": pa.array(["commune"] * n),
                "certification_commune": pa.array(["1"] * n),
                "cad_parcelles": empty,
            }
            table = pa.table([cols[c] for c in BAN_HEADER], names=BAN_HEADER)
            pa_csv.write_csv(
                table,
                out,
                write_options=pa_csv.WriteOptions(
                    include_header=False, delimiter=";", quoting_style="none"
                ),
            )
    return path.stat().st_size


def write_tiles(path: Path, tiles: int, seed: int = 17) -> int:
    """A SYNTHETIC Filosofi 2019 200 m CSV (gzip) of ``tiles`` rows; returns its size."""
    rng = np.random.default_rng(seed)
    header = ["idcar_200m", "i_est_200", "idcar_1km", "i_est_1km", "lcog_geo", *TILE_COUNTS]
    width = 5_000  # tiles per row of the grid (1,000 km)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write((",".join(header) + "\n").encode())
        for start in range(0, tiles, CHUNK):
            k = np.arange(start, min(tiles, start + CHUNK), dtype=np.int64)
            n = len(k)
            east = 3_200_000 + (k % width) * 200
            north = 2_000_000 + (k // width) * 200
            ident = pc.binary_join_element_wise(
                "CRS3035RES200mN",
                pa.array(north).cast(pa.string()),
                "E",
                pa.array(east).cast(pa.string()),
                "",
            )
            km = pc.binary_join_element_wise(
                "CRS3035RES1000mN",
                pa.array(north // 1000 * 1000).cast(pa.string()),
                "E",
                pa.array(east // 1000 * 1000).cast(pa.string()),
                "",
            )
            ind = rng.gamma(1.5, 20.0, n).round(1) + 1
            men = (ind / rng.uniform(1.8, 2.6, n)).round(1)
            cols = [
                ident,
                pa.array((rng.random(n) < 0.05).astype(np.int8)).cast(pa.string()),
                km,
                pa.array(["0"] * n),
                _commune_codes(np.minimum(k * COMMUNES // max(tiles, 1), COMMUNES)),
            ]
            for name in TILE_COUNTS:
                if name == "ind":
                    v = ind
                elif name == "men":
                    v = men
                elif name == "ind_snv":
                    v = ind * rng.uniform(18_000, 30_000, n)
                elif name.startswith("ind_"):
                    v = ind * rng.uniform(0.02, 0.2, n)
                else:
                    v = men * rng.uniform(0.05, 0.6, n)
                cols.append(_fixed(v, 1))
            pa_csv.write_csv(
                pa.table(cols, names=header),
                out,
                write_options=pa_csv.WriteOptions(
                    include_header=False, delimiter=",", quoting_style="none"
                ),
            )
    return path.stat().st_size


def write_contours(path: Path, districts: int, vertices: int = 180, seed: int = 19) -> int:
    """SYNTHETIC polling-station contours (GeoJSON, EPSG:4326): ``districts`` star-shaped
    polygons of ``vertices`` points, ~1 km across; returns the file's size."""
    rng = np.random.default_rng(seed)
    per_row = 400
    batch = 1_000
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "name": "SYNTHETIC contours", "features": [\n')
        first = True
        for start in range(0, districts, batch):
            idx = np.arange(start, min(districts, start + batch))
            # a grid of ~1.2 km cells over France's box (one polling station per cell)
            lon0 = -4.5 + (idx % per_row) * 0.016
            lat0 = 42.5 + (idx // per_row) * 0.011
            angles = np.sort(rng.uniform(0, 2 * np.pi, (len(idx), vertices - 1)), axis=1)
            radius = rng.uniform(0.3, 0.5, (len(idx), vertices - 1))
            xs = lon0[:, None] + 0.016 * radius * np.cos(angles)
            ys = lat0[:, None] + 0.011 * radius * np.sin(angles)
            for j, d in enumerate(idx):
                commune = min(int(d) * COMMUNES // max(districts, 1), COMMUNES)
                code = f"{1 + commune // 400:02d}{1 + commune % 400:03d}"
                ring = [[round(x, 6), round(y, 6)] for x, y in zip(xs[j], ys[j], strict=True)]
                ring.append(ring[0])
                feature = {
                    "type": "Feature",
                    "properties": {
                        "codeBureauVote": f"{code}_{int(d):06d}",
                        "nomBureauVote": f"BUREAU SYNTHETIQUE {int(d)}",
                        "codeCommune": code,
                        "nomCommune": f"Commune SYNTHETIQUE {commune}",
                    },
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
                out.write(("" if first else ",\n") + json.dumps(feature, separators=(",", ":")))
                first = False
        out.write("\n]}\n")
    return path.stat().st_size
