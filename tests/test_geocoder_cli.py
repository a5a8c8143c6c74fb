"""`porte geocode FILE` and `porte purge --dry-run` from the command line."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from app.cli import cli


def _env(sample_db) -> dict[str, str]:
    return {"DATABASE_URL": sample_db.app, "OWNER_DATABASE_URL": sample_db.owner}


def test_geocode_command_writes_levels_and_scores(sample_db, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "ref;adresse\n"
        "a;12 rue Maurice Ravel, 35170 Bruz\n"
        "b;10 rue de Rivoli, 75001 Paris\n"
        "c;rue des Acacias, Bruz\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        cli, ["geocode", str(src), "--column", "adresse", "-o", str(out)], env=_env(sample_db)
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["level"] for r in rows] == ["housenumber", "none", "street"]
    assert rows[0]["ref"] == "a" and rows[0]["address_id"] and float(rows[0]["score"]) > 0.9
    assert "département 75" in rows[1]["reason"]
    bad = CliRunner().invoke(cli, ["--lang", "en", "geocode", str(src)], env=_env(sample_db))
    assert bad.exit_code == 2 and "Column 'address' not found" in bad.output


def test_purge_dry_run_changes_nothing(sample_db):
    res = CliRunner().invoke(cli, ["--lang", "en", "purge", "--dry-run"], env=_env(sample_db))
    assert res.exit_code == 0, res.output
    assert "dry run: nothing changed" in res.output


def test_geocode_output_cannot_start_a_formula(sample_db, tmp_path):
    """`porte geocode` writes the file back for a spreadsheet: cells of the file (a hostile
    supporter form) and of the geocoder are neutralised."""
    src = tmp_path / "in.csv"
    src.write_text(
        'ref;adresse\n"=HYPERLINK(""http://evil.test"")";12 rue Maurice Ravel, 35170 Bruz\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        cli, ["geocode", str(src), "--column", "adresse", "-o", str(out)], env=_env(sample_db)
    )
    assert res.exit_code == 0, res.output
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["ref"] == '\'=HYPERLINK("http://evil.test")' and row["level"] == "housenumber"
    assert float(row["score"]) > 0.9  # numbers stay numbers
