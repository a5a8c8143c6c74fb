"""Fixtures and helpers for the import tests: DB snapshots, files derived from the sample."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import asyncpg
import pytest

from app.services.reference.imports.common import asyncpg_dsn
from app.services.reference.imports.sample import BRUZ_BAL, DISTRICTS, ELECTIONS, TILES

REFERENCE_TABLES = {
    "insee_tile": "id",
    "address": "id",
    "district": "code",
    "election": "id",
    "election_result": "election_id, district_code",
    "election_candidate_result": "election_id, district_code, position",
    "import_run": "id",
}
BAN_HEADER = [
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom_voie", "certification_commune", "cad_parcelles",
]  # fmt: skip


async def snapshot(owner_url: str) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every reference table (ordered by primary key)."""
    conn = await asyncpg.connect(asyncpg_dsn(owner_url))
    try:
        out = {}
        for table, pk in REFERENCE_TABLES.items():
            # election.loaded_at changes on every re-import, on purpose: leave it out
            source = table
            if table == "election":
                source = "(SELECT id, name, source_file FROM election)"
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY {pk}), ''))"
                f" AS h FROM {source} t"
            )
            out[table] = (row["n"], row["h"])
        return out
    finally:
        await conn.close()


async def fetch(owner_url: str, sql: str, *args):
    """Rows of one query, as the owner."""
    conn = await asyncpg.connect(asyncpg_dsn(owner_url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def fetchval(owner_url: str, sql: str, *args):
    """One value of one query, as the owner."""
    rows = await fetch(owner_url, sql, *args)
    return rows[0][0] if rows else None


def bal_to_ban(
    dst: Path, *, limit: int | None = None, encoding: str = "utf-8", prefix: str = ""
) -> Path:
    """Write a BAN-format CSV DERIVED from Bruz's real BAL (the README's column mapping):
    numbered addresses only, code_postal 35170, ids prefixed with ``prefix`` (so that they do not
    clash with the BAL's own). Gzipped when ``dst`` ends in .gz."""
    opener = gzip.open if dst.suffix == ".gz" else open
    with (
        open(BRUZ_BAL, encoding="utf-8-sig", newline="") as src,
        opener(dst, "wt", encoding=encoding, newline="") as out,
    ):
        w = csv.writer(out, delimiter=";", lineterminator="\n")
        w.writerow(BAN_HEADER)
        n = 0
        for r in csv.DictReader(src, delimiter=";"):
            if r["numero"] == "99999":
                continue
            w.writerow(
                [
                    prefix + r["cle_interop"],
                    "",
                    r["numero"],
                    r["suffixe"],
                    r["voie_nom"],
                    "35170",
                    r["commune_insee"],
                    r["commune_nom"],
                    "",
                    "",
                    r["x"],
                    r["y"],
                    r["long"],
                    r["lat"],
                    r["position"],
                    "",
                    r["lieudit_complement_nom"],
                    "BRUZ",
                    r["voie_nom"].upper(),
                    "commune",
                    "commune",
                    r["certification_commune"],
                    r["cad_parcelles"],
                ]
            )
            n += 1
            if limit and n >= limit:
                break
    return dst


def copy_lines(src: Path, dst: Path, edit=None, encoding: str = "utf-8") -> Path:
    """Copy a text file line by line through ``edit(lineno, line) -> str | None``."""
    with open(src, encoding="utf-8-sig", newline="") as fh:
        lines = fh.readlines()
    out = []
    for i, line in enumerate(lines, start=1):
        new = edit(i, line) if edit else line
        if new is not None:
            out.append(new)
    dst.write_text("".join(out), encoding=encoding, newline="")
    return dst


@pytest.fixture(scope="module")
async def loaded_db(make_db, tmp_path_factory):
    """A fresh database holding tiles, districts, one election and Bruz's doors."""
    from app.services.reference.imports.addresses import import_addresses
    from app.services.reference.imports.districts import import_districts
    from app.services.reference.imports.results import import_results
    from app.services.reference.imports.tiles import import_tiles

    urls = make_db("imp")
    reports = tmp_path_factory.mktemp("reports")
    await import_tiles(urls.owner, TILES, report_path=reports / "t.csv")
    await import_districts(urls.owner, DISTRICTS, report_path=reports / "d.csv")
    name, path = ELECTIONS[-1]
    await import_results(urls.owner, path, election=name, report_path=reports / "r.csv")
    await import_addresses(urls.owner, BRUZ_BAL, report_path=reports / "a.csv")
    return urls


def read_report(path) -> list[dict[str, str]]:
    """The rows of a rejected-rows report CSV."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_ban(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write a small BAN-format CSV from dicts (missing columns left empty)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(BAN_HEADER)
        for r in rows:
            w.writerow([r.get(k, "") for k in BAN_HEADER])
    return path


def read_csv_rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    """All rows (header included) of a UTF-8 CSV."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


def write_csv_rows(path: Path, rows, *, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    """Write rows to a CSV."""
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path
