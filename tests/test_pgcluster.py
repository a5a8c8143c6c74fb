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


def test_default_data_dir_is_reachable_by_the_service_user(monkeypatch, tmp_path):
    """As root, a checkout under a private folder (e.g. /root) puts the cluster in /var/lib."""
    import os

    from app import config, paths

    private = tmp_path / "private"
    (private / "checkout").mkdir(parents=True)
    os.chmod(private, 0o700)
    monkeypatch.setattr(paths, "state_dir", lambda: private / "checkout" / ".porte")
    if os.geteuid() == 0:
        assert config.default_db_dir() == Path("/var/lib/porte-a-porte/db")
    else:
        assert config.default_db_dir() == private / "checkout" / ".porte" / "db"
    os.chmod(private, 0o755)
    open_parents = all(p.stat().st_mode & 0o001 for p in (private / "checkout").parents)
    if open_parents:
        assert config.default_db_dir() == private / "checkout" / ".porte" / "db"


def test_db_start_in_an_unreachable_folder_says_what_to_do(tmp_path, monkeypatch):
    """PORTE_DB_DIR under a folder the server's user cannot enter: a clear refusal, no initdb."""
    import os
    import stat

    if pgcluster.find_binaries() is None:
        pytest.skip("PostgreSQL binaries are not installed")
    private = tmp_path / "private"
    private.mkdir()
    os.chmod(private, 0o700)
    monkeypatch.setenv("PORTE_DB_DIR", str(private / "db"))
    monkeypatch.setenv("PORTE_DB_PORT", "1")
    try:
        result = CliRunner().invoke(cli, ["db", "start"])
        if os.geteuid() == 0:  # the server runs as `porte`, which cannot enter `private`
            assert result.exit_code != 0
            assert "PORTE_DB_DIR" in result.output and str(private) in result.output
            assert "initdb" not in result.output
            assert not (private / "db" / "pgdata").exists()
        else:  # as an ordinary user the folder is ours: refuse a read-only one instead
            os.chmod(private, stat.S_IRUSR | stat.S_IXUSR)
            monkeypatch.setenv("PORTE_DB_DIR", str(private / "db2"))
            result = CliRunner().invoke(cli, ["db", "start"])
            assert result.exit_code != 0 and "PORTE_DB_DIR" in result.output
    finally:
        os.chmod(private, 0o755)
