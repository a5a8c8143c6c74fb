"""The private cluster manager: lifecycle, roles, and what it says when PostGIS is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import pgcluster
from app.cli import cli
from app.pgcluster import Cluster, ClusterError


def test_missing_binaries_names_the_debian_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(pgcluster, "_candidate_bindirs", lambda: [tmp_path / "nothing" / "bin"])
    monkeypatch.setattr(pgcluster.shutil, "which", lambda name: None)
    assert pgcluster.find_binaries() is None
    message = pgcluster.missing_message()
    assert "postgresql-15-postgis-3" in message and "apt-get install" in message
    assert "DATABASE_URL" in message
    with pytest.raises(ClusterError, match="postgresql-15-postgis-3"):
        Cluster(tmp_path / "db", 1).start(install=False)


def test_cluster_roles_isolate_the_service(pg_cluster: Cluster):
    """The service role owns nothing and cannot bypass RLS; the owner owns the schema."""
    out = pg_cluster.psql(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname IN ('porte_app','porte_owner') ORDER BY 1"
    )
    assert out.split() == ["porte_app|f|f", "porte_owner|f|t"]
    owned = pg_cluster.psql(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = 'porte_app'",
        database="porte_template",
    )
    assert owned.strip() == "0"
    # Listens on loopback only, on its own port, with its own data directory.
    assert pg_cluster.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert int(pg_cluster.psql("SHOW port")) == pg_cluster.port
    assert Path(pg_cluster.psql("SHOW data_directory").strip()) == pg_cluster.pgdata


def test_db_cli_status_and_url(pg_cluster: Cluster, monkeypatch):
    monkeypatch.setenv("PORTE_DB_DIR", str(pg_cluster.data_dir))
    monkeypatch.setenv("PORTE_DB_PORT", str(pg_cluster.port))
    runner = CliRunner()
    status = runner.invoke(cli, ["db", "status"])
    assert status.exit_code == 0, status.output
    assert '"running": true' in status.output
    url = runner.invoke(cli, ["db", "url"])
    assert url.exit_code == 0
    assert url.output.startswith("postgresql+asyncpg://porte_app:")
    assert f"127.0.0.1:{pg_cluster.port}/porte" in url.output


def test_db_cli_status_when_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTE_DB_DIR", str(tmp_path / "none"))
    result = CliRunner().invoke(cli, ["db", "url"])
    assert result.exit_code == 1
    assert "porte db start" in result.output
