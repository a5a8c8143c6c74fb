"""SYNTHETIC demo doors for the 92-13 sample (no real address points exist for that area).

Doors are generated inside each populated INSEE tile in proportion to its households: every house
(``men_mais``) is one door with one household; households in flats (``men_coll``) are grouped into
buildings of 4 to 40 households, one door each (``households`` > 1). Points are drawn uniformly in
the tile and kept only inside a loaded polling-station contour, whose commune they take. The
generator is deterministic (seeded per tile). The rows carry ``source='synthetic'``, street names
say "fictive", and ids start with ``synthetic_``: nothing here is a real address. Importing a real
BAN/BAL file for a commune replaces its synthetic doors.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from app.geo.insee import parse_tile_id

SEED = 9213
BUILDING_MIN, BUILDING_MAX = 4, 40
POSTCODES = {"92002": "92160", "92014": "92340", "92019": "92290", "92071": "92330"}
HEADER = [
    "id",
    "numero",
    "rep",
    "nom_voie",
    "code_postal",
    "code_insee",
    "nom_commune",
    "lon",
    "lat",
    "households",
]


def _round(value: float, rng: random.Random) -> int:
    """Stochastic rounding: keeps totals right on average."""
    base = int(value)
    return base + (1 if rng.random() < value - base else 0)


def generate_doors(
    tiles_csv: Path, districts_geojson: Path, out_csv: Path, *, seed: int = SEED
) -> dict[str, float]:
    """Write synthetic doors (BAN-format CSV + a ``households`` column); return totals."""
    import shapely
    from pyproj import Transformer
    from shapely.geometry import shape

    with open(districts_geojson, encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    polys = [shape(f["geometry"]) for f in features]
    props = [f["properties"] for f in features]
    tree = shapely.STRtree(polys)
    to_wgs84 = Transformer.from_crs(3035, 4326, always_xy=True)

    with open(tiles_csv, encoding="utf-8-sig", newline="") as fh:
        tiles = sorted(csv.DictReader(fh), key=lambda r: r["idcar_200m"])

    numbers: dict[str, int] = {}
    doors = households = 0.0
    with open(out_csv, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, delimiter=";", lineterminator="\n")
        w.writerow(HEADER)
        for t in tiles:
            tile = parse_tile_id(t["idcar_200m"])
            rng = random.Random(f"{seed}:{tile.id}")
            sizes = [1] * _round(float(t["men_mais"] or 0), rng)
            flats = float(t["men_coll"] or 0)
            while flats >= 0.5:
                size = min(flats, rng.randint(BUILDING_MIN, BUILDING_MAX))
                size = max(1, round(size))
                sizes.append(size)
                flats -= size
            if not sizes:
                continue
            xs = [tile.east + rng.random() * tile.size for _ in sizes]
            ys = [tile.north + rng.random() * tile.size for _ in sizes]
            lons, lats = to_wgs84.transform(xs, ys)
            points = shapely.points(lons, lats)
            pts_idx, poly_idx = tree.query(points, predicate="within")
            owner = dict(zip(pts_idx.tolist(), poly_idx.tolist(), strict=True))
            street = f"Voie fictive du carreau N{tile.north} E{tile.east} (synthétique)"
            for i, size in enumerate(sizes):
                if i not in owner:
                    continue  # outside the constituency's polling-station contours
                p = props[owner[i]]
                commune = p["codeCommune"]
                numbers[commune] = numbers.get(commune, 0) + 1
                n = numbers[commune]
                w.writerow(
                    [
                        f"synthetic_{commune}_{n:06d}",
                        n,
                        "",
                        street,
                        POSTCODES.get(commune, ""),
                        commune,
                        p["nomCommune"],
                        f"{lons[i]:.7f}",
                        f"{lats[i]:.7f}",
                        size,
                    ]
                )
                doors += 1
                households += size
    return {"doors": doors, "households": households}
