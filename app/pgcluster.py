"""A private PostgreSQL + PostGIS cluster managed by the project (`porte db ...`).

The cluster lives in its own data directory and listens on its own port on 127.0.0.1 only. When
invoked as root (PostgreSQL refuses to run as root) the server runs as the unprivileged system user
``porte``, created on first use. Three roles are provisioned:

- ``porte_super``: the cluster superuser, reachable only through the data directory's unix socket;
- ``porte_owner``: owns the schema, runs migrations and imports of public data (BYPASSRLS for
  maintenance across campaigns);
- ``porte_app``: the service's role; owns nothing, no BYPASSRLS, subject to row-level security.

A fourth, ``porte_replicator`` (REPLICATION, nothing else), is made when a streaming replica is
first created from the cluster (``create_standby``).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from app.i18n import _

SYSTEM_USER = "porte"
DB_NAME = "porte"
REPLICATION_ROLE = "porte_replicator"
CREDENTIALS = "porte-credentials.json"
DEBIAN_PACKAGES = ["postgresql-15", "postgresql-15-postgis-3", "postgresql-contrib"]


class ClusterError(RuntimeError):
    """Something a person must act on; the message says what."""


@dataclass(frozen=True)
class Binaries:
    """Where the PostgreSQL server programs and the PostGIS extension are."""

    bindir: Path
    sharedir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _candidate_bindirs() -> list[Path]:
    dirs = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        dirs.append(Path(os.path.realpath(pg_ctl)).parent)
    return dirs


def find_binaries() -> Binaries | None:
    """Locate initdb/pg_ctl and a share directory that holds PostGIS, or None."""
    for bindir in _candidate_bindirs():
        if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
            continue
        version = bindir.parent.name
        for share in (Path(f"/usr/share/postgresql/{version}"), bindir.parent / "share"):
            if (share / "extension" / "postgis.control").exists():
                return Binaries(bindir, share)
    return None


def missing_message() -> str:
    """What to install when the server or PostGIS is missing."""
    has_pg = any((d / "initdb").exists() for d in _candidate_bindirs())
    head = (
        _("PostGIS is not installed on this machine.")
        if has_pg
        else _("PostgreSQL and PostGIS are not installed on this machine.")
    )
    return head + _(
        " Install them with:\n    sudo apt-get install -y {packages}\nor run `porte db start "
        "--install` to let Porte-à-porte install them (root, Debian/Ubuntu). Alternatively set "
        "DATABASE_URL to an existing PostGIS server."
    ).format(packages=" ".join(DEBIAN_PACKAGES))


def install_packages() -> None:
    """Install the Debian packages (root only)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterError(missing_message())
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES], check=True, env=env)


class Cluster:
    """One private cluster: data directory, port, credentials."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self._bins: Binaries | None = None

    # ---- locating things
    @property
    def bins(self) -> Binaries:
        if self._bins is None:
            self._bins = find_binaries()
            if self._bins is None:
                raise ClusterError(missing_message())
        return self._bins

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def credentials(self) -> dict[str, str]:
        if not self.credentials_path.exists():
            raise ClusterError(
                _("No cluster in {path}. Run `porte db start` to create and start it.").format(
                    path=self.data_dir
                )
            )
        return json.loads(self.credentials_path.read_text())

    def url(self, role: str = "app", database: str = DB_NAME) -> str:
        """SQLAlchemy URL (asyncpg) for role 'app' or 'owner'."""
        creds = self.credentials()
        user = {"app": "porte_app", "owner": "porte_owner"}[role]
        return f"postgresql+asyncpg://{user}:{creds[user]}@127.0.0.1:{self.port}/{database}"

    # ---- running commands as the unprivileged user
    def _as_user(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        _ensure_system_user()
        return ["runuser", "-u", SYSTEM_USER, "--", *args]

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self._as_user(args), capture_output=True, text=True, **kw)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            _ensure_system_user()
            pw = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # ---- lifecycle
    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        res = self._run([self.bins.tool("pg_ctl"), "-D", str(self.pgdata), "status"])
        return res.returncode == 0

    def start(self, *, install: bool = False) -> None:
        """Create the cluster on first use, then start it. Idempotent."""
        if find_binaries() is None:
            if not install:
                raise ClusterError(missing_message())
            install_packages()
            self._bins = None
        first = not self.is_initialised()
        if first:
            self._initdb()
        if not self.is_running():
            res = self._run(
                [
                    self.bins.tool("pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
            if res.returncode != 0:
                tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
                raise ClusterError(
                    _("PostgreSQL did not start (port {port} busy?).").format(port=self.port)
                    + f"\n{res.stderr}\n{tail}"
                )
        if first:
            self._provision()

    def stop(self) -> None:
        if self.is_running():
            self._run(
                [self.bins.tool("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]
            )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the cluster superuser through the private unix socket."""
        res = self._run(
            [
                self.bins.tool("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-h",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-U",
                "porte_super",
                "-d",
                database,
                "-c",
                sql,
            ]
        )
        if res.returncode != 0:
            raise ClusterError(_("SQL failed: {error}").format(error=res.stderr.strip()))
        return res.stdout

    def _check_reachable(self) -> None:
        """Refuse, with the way out, a data directory the server's user cannot reach."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClusterError(
                _(
                    "Cannot create the database folder {path}: {error}. Choose another one with "
                    "PORTE_DB_DIR (a folder you can write to)."
                ).format(path=self.data_dir, error=exc.strerror)
            ) from exc
        if os.geteuid() != 0:
            return
        # As root the server runs as the unprivileged user `porte`: every parent folder must let
        # it through (execute permission), or initdb fails with a cryptic "permission denied".
        for folder in [*reversed(self.data_dir.parents), self.data_dir]:
            if folder == self.data_dir:
                break
            if self._run(["test", "-x", str(folder)]).returncode != 0:
                raise ClusterError(
                    _(
                        "The database server runs as the system user '{user}', which cannot "
                        "enter {folder} (mode {mode}), so it cannot reach {path}. Set "
                        "PORTE_DB_DIR to a folder it can reach, e.g. /var/lib/porte-a-porte/db, "
                        "or let it through with `chmod o+x {folder}`."
                    ).format(
                        user=SYSTEM_USER,
                        folder=folder,
                        mode=stat.filemode(folder.stat().st_mode),
                        path=self.data_dir,
                    )
                )

    def _initdb(self) -> None:
        self._check_reachable()
        os.chmod(self.data_dir, 0o755)
        self._chown(self.data_dir)
        res = self._run(
            [
                self.bins.tool("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "porte_super",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        if res.returncode != 0:
            raise ClusterError(_("initdb failed:") + f"\n{res.stderr}")
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# Porte-à-porte private cluster\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pgdata}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "work_mem = 32MB\n"
                "maintenance_work_mem = 256MB\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "max_wal_size = 2GB\n"
                "jit = off\n"
                "# streaming replication: a hot standby can follow this cluster (create_standby)\n"
                "wal_level = replica\n"
                "max_wal_senders = 10\n"
                "wal_keep_size = 512MB\n"
                "hot_standby = on\n"
            )
        with (self.pgdata / "pg_hba.conf").open("a") as fh:
            fh.write(
                "# Porte-à-porte: streaming replicas connect as porte_replicator (password)\n"
                f"host replication {REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256\n"
            )

    def _provision(self) -> None:
        creds = {"porte_owner": secrets.token_urlsafe(24), "porte_app": secrets.token_urlsafe(24)}
        self.psql(
            f"CREATE ROLE porte_owner LOGIN BYPASSRLS CREATEDB PASSWORD '{creds['porte_owner']}';"
            f"CREATE ROLE porte_app LOGIN NOBYPASSRLS PASSWORD '{creds['porte_app']}';"
        )
        self.credentials_path.write_text(json.dumps(creds))
        os.chmod(self.credentials_path, 0o600)
        self.create_database(DB_NAME)

    def ensure_replication_role(self) -> str:
        """The replication role's password (the role is created on first use)."""
        creds = self.credentials()
        if REPLICATION_ROLE not in creds:
            creds[REPLICATION_ROLE] = secrets.token_urlsafe(24)
            self.psql(
                f"CREATE ROLE {REPLICATION_ROLE} LOGIN REPLICATION "
                f"PASSWORD '{creds[REPLICATION_ROLE]}'"
            )
            self.credentials_path.write_text(json.dumps(creds))
            os.chmod(self.credentials_path, 0o600)
        return creds[REPLICATION_ROLE]

    def create_standby(self, data_dir: Path, port: int) -> Cluster:
        """A hot standby of this (running) cluster, streaming from it, started; returned.

        ``pg_basebackup -R`` over TCP as ``porte_replicator``: the same path a standby on another
        host takes (there, allow its address in pg_hba.conf and listen on it). The standby has
        the same roles and passwords (a physical copy); reads only.
        """
        standby = Cluster(data_dir, port)
        if standby.is_initialised():
            raise ClusterError(_("{path} already holds a cluster.").format(path=standby.pgdata))
        password = self.ensure_replication_role()
        standby._check_reachable()
        os.chmod(standby.data_dir, 0o755)
        standby._chown(standby.data_dir)
        conninfo = (
            f"host=127.0.0.1 port={self.port} user={REPLICATION_ROLE} password={password} "
            "application_name=porte_standby"
        )
        res = self._run(
            [
                self.bins.tool("pg_basebackup"),
                "-d",
                conninfo,
                "-D",
                str(standby.pgdata),
                "-R",  # standby.signal + primary_conninfo
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",  # a fresh copy; the server syncs what it writes from here on
            ]
        )
        if res.returncode != 0:
            shutil.rmtree(standby.pgdata, ignore_errors=True)
            raise ClusterError(_("pg_basebackup failed:") + f"\n{res.stderr}")
        with (standby.pgdata / "postgresql.conf").open("a") as fh:
            fh.write(
                "\n# Porte-à-porte standby (later lines win)\n"
                f"port = {port}\n"
                f"unix_socket_directories = '{standby.pgdata}'\n"
                "hot_standby = on\n"
            )
        shutil.copy(self.credentials_path, standby.credentials_path)
        os.chmod(standby.credentials_path, 0o600)
        standby.start()
        return standby

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create a database owned by porte_owner with PostGIS, pg_trgm, unaccent and
        fuzzystrmatch installed."""
        tmpl = f" TEMPLATE {template}" if template else ""
        self.psql(f'CREATE DATABASE "{name}" OWNER porte_owner{tmpl}')
        if not template:
            self.psql(
                "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pg_trgm;"
                "CREATE EXTENSION IF NOT EXISTS unaccent;"
                "CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;"
                f'GRANT CONNECT ON DATABASE "{name}" TO porte_app;'
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
                "ALTER SCHEMA public OWNER TO porte_owner;",
                database=name,
            )

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def status(self) -> dict[str, object]:
        running = self.is_running()
        info: dict[str, object] = {
            "data_dir": str(self.data_dir),
            "port": self.port,
            "initialised": self.is_initialised(),
            "running": running,
        }
        if running:
            info["version"] = self.psql("SELECT version()").strip()
        return info


def _ensure_system_user() -> None:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
        )


def wait_for(predicate, timeout: float = 30.0) -> bool:
    """Poll until predicate() is true or timeout seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False
