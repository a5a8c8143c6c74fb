"""`porte rank`: the top districts with their first three reasons, in a table."""

from __future__ import annotations

from typer.testing import CliRunner

from app.cli import cli
from tests.fixtures_ranking import ranking_env  # noqa: F401


def test_porte_rank_prints_top_districts_with_reasons(ranking_env, monkeypatch):  # noqa: F811
    _, world, area, _, settings = ranking_env
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OWNER_DATABASE_URL", settings.owner_database_url)
    result = CliRunner().invoke(
        cli,
        [
            "--lang",
            "en",
            "rank",
            "--campaign",
            str(world.campaign_id),
            "--preset",
            "mobilisation",
            "--side",
            "ENS",
            "--limit",
            "2",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert area.code("A") in out and area.code("D") in out
    assert area.code("C") not in out  # limit 2: A then D
    assert out.index(area.code("A")) < out.index(area.code("D"))
    assert "Abstention" in out and "Our side's score" in out
    swing = CliRunner().invoke(
        cli,
        [
            "--lang",
            "en",
            "rank",
            "--campaign",
            str(world.campaign_id),
            "--preset",
            "persuasion",
            "--side",
            "ENS",
            "--swing-from",
            f"fixture {area.prefix} reference",
            "--limit",
            "1",
        ],
        env={"COLUMNS": "200"},
    )
    assert swing.exit_code == 0, swing.output
    # A first: ENS gained 20 points there since the reference election (test_ranking_swing.py)
    assert area.code("A") in swing.output and area.code("B") not in swing.output
    assert f"swing from: fixture {area.prefix} reference" in swing.output
    assert "Swing (absolute) 20.0 pts" in swing.output
    bad = CliRunner().invoke(
        cli, ["--lang", "en", "rank", "--campaign", str(world.campaign_id), "--preset", "x"]
    )
    assert bad.exit_code == 2 and "Unknown preset" in bad.output
    # French by default: the same explanation, French words and numbers (decimal comma)
    fr = CliRunner().invoke(
        cli,
        [
            "rank",
            "--campaign",
            str(world.campaign_id),
            "--preset",
            "persuasion",
            "--side",
            "ENS",
            "--swing-from",
            f"fixture {area.prefix} reference",
            "--limit",
            "1",
        ],
        env={"COLUMNS": "200"},
    )
    assert fr.exit_code == 0, fr.output
    assert "Bascule (absolue) 20,0 pts" in fr.output, fr.output
    assert "où frapper en premier" in fr.output
