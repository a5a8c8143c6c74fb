"""`porte import addresses` and `porte supporters import` killed with -9, and a full disk.

The kill points are chosen at random within each phase (the seed is printed; set
PORTE_FAULT_SEED to replay one), watched in PostgreSQL's own progress views: during COPY
(``pg_stat_progress_copy``), during the index rebuild of the bulk path
(``pg_stat_progress_create_index``), during a step of the allocation refresh. After each kill the
previous data is checked intact, row for row, and a re-run completes.

All data here is SYNTHETIC: districts, tiles and doors from bench/allocation/synthetic.py, an
address file of made-up doors generated below, supporters from tests/test_supporters_cli.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import text

from app.migrate import upgrade
from bench.allocation.synthetic import Size, build
from tests.conftest import DbUrls, make_settings
from tests.faults.bounds import bounded
from tests.faults.processes import PORTE, settings_env, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SIZE = Size(4, 3, 150, 3_000, towns=6)  # 12 blocks of 10 km, SYNTHETIC
NEW_DOORS = 100_000  # the file imported under faults: a bulk load (indexes rebuilt once)
SEED = int(os.environ.get("PORTE_FAULT_SEED") or time.time_ns() % 1_000_000)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def synthetic_ban(path: Path, n: int, size: Size, seed: int, prefix: str = "FAULT") -> Path:
    """A BAN-format CSV of ``n`` SYNTHETIC doors spread over ``size``'s blocks."""
    rng = np.random.default_rng(seed)
    x = size.origin_x + rng.uniform(0, size.blocks_x * 10_000, n)
    y = size.origin_y + rng.uniform(0, size.blocks_y * 10_000, n)
    lon, lat = Transformer.from_crs(3035, 4326, always_xy=True).transform(x, y)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(["id", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
                    "lon", "lat"])  # fmt: skip
        for i in range(n):
            street = f"SYNTHETIC rue des essais de pannes {i // 50}"  # ~100 bytes a line
            w.writerow([f"{prefix}_{i}", 1 + i % 300, "", street, "99100", "99100",
                        "SYNTHETIC", f"{lon[i]:.7f}", f"{lat[i]:.7f}"])  # fmt: skip
    return path


@dataclass
class ImportBase:
    """A database of the fault cluster with SYNTHETIC reference data, and the file to import."""

    urls: DbUrls
    file: Path
    env: dict[str, str]


async def _database(fault_db, name: str) -> DbUrls:
    fault_db.cluster.drop_database(name)
    fault_db.cluster.create_database(name)
    cluster = fault_db.cluster
    urls = DbUrls(name, cluster.url("app", name), cluster.url("owner", name))
    await asyncio.to_thread(upgrade, urls.owner)
    return urls


@pytest.fixture(scope="module")
async def import_base(fault_db, tmp_path_factory) -> ImportBase:
    urls = await _database(fault_db, "imports")
    conn = await asyncpg.connect(_dsn(urls.owner))
    try:
        async with conn.transaction():
            await build(conn, SIZE)
        await conn.execute("ANALYZE")
        await conn.execute("SELECT porte_refresh_allocation()")
    finally:
        await conn.close()
    folder = tmp_path_factory.mktemp("imports")
    file = await asyncio.to_thread(
        synthetic_ban, folder / "adresses-faults.csv", NEW_DOORS, SIZE, SEED
    )
    env = settings_env(make_settings(urls), lang="en")
    return ImportBase(urls, file, env)


SNAPSHOT = {
    "doors": "SELECT count(*), md5(string_agg(id || ':' || ban_id || ':' || lon || ':' || lat, ','"
    " ORDER BY id)) FROM address",
    "indexes": "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) FROM pg_indexes "
    "WHERE tablename = 'address'",
    "triggers": "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) "
    "FROM pg_trigger WHERE tgrelid = 'address'::regclass",
    "geocoder": "SELECT (SELECT sum(n) FROM geocode_street), (SELECT sum(n) FROM geocode_commune)",
    "runs": "SELECT count(*) FROM import_run",
    "allocation": "SELECT count(*), md5(string_agg(address_id || ':' || district_code, ','"
    " ORDER BY address_id)) FROM door_district",
}


async def snapshot(urls: DbUrls) -> dict[str, tuple]:
    """What must survive a failed import, row for row."""
    conn = await asyncpg.connect(_dsn(urls.owner))
    try:
        await conn.execute("SET lock_timeout = '10s'")  # a lock left behind fails the test
        return {k: tuple(await conn.fetchrow(sql)) for k, sql in SNAPSHOT.items()}
    finally:
        await conn.close()


class Command:
    """A `porte` command as its own process, output collected."""

    running: list[Command] = []

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        self.args = args
        Command.running.append(self)
        self.proc = subprocess.Popen(
            [PORTE, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def finish(self, within: float) -> int:
        """Wait (bounded) for the command to end; its exit code."""
        await wait_until(lambda: self.proc.poll() is not None, within, " ".join(self.args[:2]))
        await asyncio.wait_for(self._reader, 10)
        return self.proc.returncode


@pytest.fixture(autouse=True)
def _no_command_left():
    """Whatever happens in a test (its bound exceeded), its commands do not outlive it."""
    yield
    while Command.running:
        Command.running.pop().kill9()


async def _one(urls: DbUrls, sql: str, *args):
    conn = await asyncpg.connect(_dsn(urls.owner))
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def _no_transaction(urls: DbUrls) -> bool:
    """No transaction of the service's role is open (a killed import's has ended)."""
    row = await _one(
        urls,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'porte_app' "
        "AND xact_start IS NOT NULL",
    )
    return row["n"] == 0


async def _gone(urls: DbUrls, app: str) -> bool:
    row = await _one(
        urls, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", app
    )
    return row["n"] == 0


async def _kill_when(cmd: Command, urls: DbUrls, reached, what: str, within: float = 120):
    """Kill -9 ``cmd`` as soon as ``await reached(conn)`` is true (polled every 10 ms); fail if
    the command ended first."""
    conn = await asyncpg.connect(_dsn(urls.owner))
    try:

        async def check() -> bool:
            if cmd.proc.poll() is not None:
                raise AssertionError(f"the command ended before {what}:\n{cmd.output[-3000:]}")
            return bool(await reached(conn))

        await wait_until(check, within, what, every=0.01)
        cmd.kill9()
    finally:
        await conn.close()
    await cmd.finish(10)


def _sql_true(sql: str):
    async def reached(conn) -> bool:
        return bool(await conn.fetchval(sql))

    return reached


def _building_for(delay: float):
    """True while an index of ``address`` is being built, ``delay`` seconds or more after the
    first build was seen (the builds are short: a kill point later in the rebuild is any build
    still running then, whichever it is)."""
    first: list[float] = []

    async def reached(conn) -> bool:
        building = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'address'::regclass"
        )
        if not building:
            return False
        first.append(first[0] if first else time.monotonic())
        return time.monotonic() - first[0] >= delay

    return reached


def _nth_distinct(sql: str, nth: int):
    """True once ``sql`` (one value or none) has returned ``nth`` distinct values, while it
    still returns one (the nth thing is in progress)."""
    seen: set = set()

    async def reached(conn) -> bool:
        value = await conn.fetchval(sql)
        if value is None:
            return False
        seen.add(value)
        return len(seen) >= nth

    return reached


@bounded(420)
async def test_address_import_killed_during_copy_index_rebuild_and_allocation(
    import_base, tmp_path
):
    """kill -9 at a random point of COPY, then of the index rebuild: the doors, indexes,
    geocoder counts, import log and allocation are exactly as before, no lock is left, within
    seconds. Then the import commits and is killed during the allocation refresh: the doors
    are in, and `porte allocation refresh` continues where it stopped and matches a full
    rebuild."""
    rng = random.Random(SEED)
    print(f"PORTE_FAULT_SEED={SEED}")
    base = import_base
    before = await snapshot(base.urls)
    args = ["import", "addresses", str(base.file), "--quiet"]

    # 1. During COPY, after a random share of the rows.
    at = int(NEW_DOORS * rng.uniform(0.1, 0.8))
    cmd = Command(args, base.env, tmp_path)
    await _kill_when(
        cmd,
        base.urls,
        _sql_true(
            f"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_copy WHERE tuples_processed >= {at})"
        ),
        f"COPY past row {at:,}",
    )
    started = time.monotonic()
    await wait_until(lambda: _gone(base.urls, "porte-import"), 15, "the import's backend to end")
    assert await snapshot(base.urls) == before
    took = time.monotonic() - started
    print(f"killed during COPY after row {at:,}; backend gone in {took:.1f} s")

    # 2. During the index rebuild (bulk path), a random time after it starts.
    delay = rng.uniform(0, 0.25)
    cmd = Command(args, base.env, tmp_path)
    await _kill_when(
        cmd,
        base.urls,
        _building_for(delay),
        f"an index build {delay:.2f} s into the rebuild",
    )
    started = time.monotonic()
    await wait_until(lambda: _gone(base.urls, "porte-import"), 15, "the import's backend to end")
    assert await snapshot(base.urls) == before  # every index back, none half-built
    took = time.monotonic() - started
    print(f"killed {delay:.2f} s into the index rebuild; backend gone in {took:.1f} s")

    # 3. The import commits, then the allocation refresh is killed mid-step.
    step = rng.randint(1, 2)  # steps of 4 blocks, then 8: at least two steps for 12 blocks
    cmd = Command(args[:-1] + ["--json"], base.env, tmp_path)  # --json: refresh without a bar
    await _kill_when(
        cmd,
        base.urls,
        _nth_distinct(
            "SELECT query_start FROM pg_stat_activity WHERE application_name = "
            "'porte-allocation' AND state = 'active' AND query LIKE '%porte_allocation_step%'",
            step,
        ),
        f"allocation step {step}",
    )
    await wait_until(lambda: _gone(base.urls, "porte-allocation"), 15, "the refresh to end")
    after = await snapshot(base.urls)
    assert after["doors"][0] == before["doors"][0] + NEW_DOORS  # the import itself committed
    assert after["runs"][0] == before["runs"][0] + 1
    assert after["indexes"] == before["indexes"] and after["triggers"] == before["triggers"]
    state = await _one(base.urls, "SELECT stale, run_started_at FROM allocation_state")
    assert state["stale"], "the refresh was killed: the allocation must still say so"

    again = Command(["allocation", "refresh", "--lines"], base.env, tmp_path)
    assert await again.finish(180) == 0, again.output
    if step > 1:  # a step had committed: the run goes on from there
        assert "continued" in again.output, again.output
    resumed = await snapshot(base.urls)
    state = await _one(base.urls, "SELECT stale, run_started_at FROM allocation_state")
    assert not state["stale"] and state["run_started_at"] is None
    conn = await asyncpg.connect(_dsn(base.urls.owner))
    try:  # the continued run gives what a full rebuild gives
        async with conn.transaction():
            await conn.execute("UPDATE allocation_state SET full_pending = true, stale = true")
            await conn.execute("SELECT porte_refresh_allocation()")
    finally:
        await conn.close()
    assert (await snapshot(base.urls))["allocation"] == resumed["allocation"]
    doors_in = await _one(base.urls, "SELECT count(*) AS n FROM door_district")
    assert doors_in["n"] > before["allocation"][0]


@bounded(240)
async def test_supporters_import_killed_mid_file_stores_nothing_then_completes(
    fault_db, fault_owner, fault_settings, tmp_path
):
    """`porte supporters import` killed -9 after a random number of chunks: no supporter, no
    audit event of the import; the same command again imports every row."""
    from tests.factories import make_world
    from tests.fixtures_geocode import load_doors
    from tests.test_supporters_cli import MAPPING, synthetic_file

    rng = random.Random(SEED + 1)
    world = await make_world(fault_owner, fault_settings)
    async with fault_owner.connect() as conn:
        doors = await load_doors(conn)
        admin = (
            await conn.execute(
                text("SELECT email FROM app_user WHERE id = :u"), {"u": world.users["admin"]}
            )
        ).scalar_one()
    lines = [f"{d['numero']} {d['nom_voie']}, 35170 {d['nom_commune']}" for d in doors[:500]]
    n = 10_000
    file = await asyncio.to_thread(synthetic_file, tmp_path / "members.csv", n, lines)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    env = settings_env(fault_settings, lang="en")
    args = ["supporters", "import", str(file), "--campaign", str(world.campaign_id),
            "--admin", admin, "--mapping", str(mapping), "--chunk-rows", "1000"]  # fmt: skip

    async def count(sql: str) -> int:
        row = await _one(fault_db.urls, sql, world.campaign_id)
        return row[0]

    chunks = rng.randint(2, 8)
    cmd = Command(args, env, tmp_path)

    def progressed() -> bool:
        if cmd.proc.poll() is not None:
            raise AssertionError(f"the import ended before chunk {chunks}:\n{cmd.output}")
        return sum("rows read" in line for line in cmd.lines) >= chunks

    await wait_until(progressed, 120, f"chunk {chunks} of the supporters import", every=0.01)
    cmd.kill9()
    await cmd.finish(10)
    await wait_until(lambda: _no_transaction(fault_db.urls), 15, "the import's backend to end")
    print(f"PORTE_FAULT_SEED={SEED}: supporters import killed after chunk {chunks}")
    assert await count("SELECT count(*) FROM supporter WHERE campaign_id = $1") == 0
    assert (
        await count(
            "SELECT count(*) FROM audit_event WHERE campaign_id = $1 "
            "AND action = 'supporter.import'"
        )
        == 0
    )
    again = Command(args, env, tmp_path)
    started = time.monotonic()
    assert await again.finish(150) == 0, again.output
    print(f"re-run: {n:,} rows in {time.monotonic() - started:.1f} s")
    assert await count("SELECT count(*) FROM supporter WHERE campaign_id = $1") == n


class SmallDisk:
    """A small tmpfs under /tmp that the database server's user owns (a tablespace's home)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "tablespace"

    @classmethod
    def mount(cls, size_mb: int) -> SmallDisk | str:
        """Mounted, or why not (a message)."""
        import pwd
        import tempfile

        from app.pgcluster import SYSTEM_USER

        disk = cls(Path(tempfile.mkdtemp(prefix="porte-tight-", dir="/tmp")))
        disk.folder.chmod(0o755)
        disk.path.mkdir()
        root = os.geteuid() == 0
        owner = pwd.getpwnam(SYSTEM_USER) if root else pwd.getpwuid(os.geteuid())
        opts = f"size={size_mb}m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "porte-tight", str(disk.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            disk.remove()
            return done.stderr.strip() or f"mount exited with {done.returncode}"
        return disk

    def grow(self, size_mb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(self.path)], check=True)

    def remove(self) -> None:
        import shutil

        subprocess.run(["umount", str(self.path)], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@bounded(240)
async def test_a_full_disk_during_an_import_is_told_clearly_and_loses_nothing(fault_db, tmp_path):
    """The doors live in a tablespace on an 8 MB tmpfs (WAL stays on the main disk, so
    PostgreSQL fails the statement and does not stop). An import that fills it: exit 1, a
    message saying the disk is full, what to do, and that the previous data is intact; it is,
    row for row, and the database keeps serving. The disk grows: the same command completes,
    and the rebuilt indexes stay in their tablespace."""
    tight = await asyncio.to_thread(SmallDisk.mount, 8)
    if isinstance(tight, str):
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {tight}")
    mnt = tight.path
    cluster = fault_db.cluster
    try:
        urls = await _database(fault_db, "diskfull")
        env = settings_env(make_settings(urls), lang="en")
        small = synthetic_ban(tmp_path / "base.csv", 3_000, SIZE, SEED, prefix="BASE")
        first = Command(["import", "addresses", str(small), "--quiet"], env, tmp_path)
        assert await first.finish(120) == 0, first.output
        cluster.psql(f"CREATE TABLESPACE porte_tight LOCATION '{mnt}'")
        cluster.psql("GRANT CREATE ON TABLESPACE porte_tight TO porte_owner")
        cluster.psql(
            "ALTER TABLE address SET TABLESPACE porte_tight; DO $$ DECLARE i regclass; BEGIN "
            "FOR i IN SELECT indexrelid::regclass FROM pg_index "
            "WHERE indrelid = 'address'::regclass LOOP "
            "EXECUTE format('ALTER INDEX %s SET TABLESPACE porte_tight', i); END LOOP; END $$",
            database="diskfull",
        )
        before = await snapshot(urls)
        big = synthetic_ban(tmp_path / "big.csv", 60_000, SIZE, SEED + 2, prefix="BIG")
        args = ["import", "addresses", str(big), "--quiet"]

        full = Command(args, env, tmp_path)
        assert await full.finish(120) == 1, full.output
        said = " ".join(full.output.split())  # the terminal wraps long lines anywhere
        assert "No space left on device" in said, full.output
        assert "no disk space left" in said and "intact" in said, full.output
        assert "Traceback" not in full.output, full.output
        assert await snapshot(urls) == before
        assert cluster.psql("SELECT count(*) FROM address", database="diskfull").strip() == "3000"

        await asyncio.to_thread(tight.grow, 256)
        again = Command(args, env, tmp_path)
        assert await again.finish(150) == 0, again.output
        after = await snapshot(urls)
        assert after["doors"][0] == 63_000
        assert after["indexes"] == before["indexes"]
        outside = cluster.psql(
            "SELECT count(*) FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE x.indrelid = 'address'::regclass AND c.reltablespace = 0",
            database="diskfull",
        )
        assert outside.strip() == "0", "an index left its tablespace"
    finally:
        cluster.drop_database("diskfull")
        with contextlib.suppress(Exception):
            cluster.psql("DROP TABLESPACE IF EXISTS porte_tight")
        await asyncio.to_thread(tight.remove)
