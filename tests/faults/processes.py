"""Real processes for the fault tests: `porte serve`, `porte import ...`, and who holds what.

Every wait here is bounded: a fault test must end by itself whatever the process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.config import Settings

PORTE = str(Path(sys.executable).with_name("porte"))


def settings_env(settings: Settings, **extra: object) -> dict[str, str]:
    """The environment under which a `porte` command sees ``settings`` (and ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTE_")}
    env.pop("DATABASE_URL", None)
    env.pop("OWNER_DATABASE_URL", None)
    values = {name: getattr(settings, name) for name in settings.model_fields_set}
    values.update(extra)
    for name, value in values.items():
        if value is None:
            continue
        key = {"database_url": "DATABASE_URL", "owner_database_url": "OWNER_DATABASE_URL"}.get(
            name, f"PORTE_{name.upper()}"
        )
        env[key] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    env["PORTE_PROGRESS"] = "0"
    return env


def children(pid: int) -> list[int]:
    """The direct children of a process (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_with_local_port(port: int, among: list[int]) -> int | None:
    """Which of ``among`` holds a TCP socket whose local port is ``port`` (a database client)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for pid in among:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


async def wait_until(
    predicate: Callable[[], object], within: float, what: str, every: float = 0.05
) -> object:
    """Poll ``predicate`` (sync or async) until it returns something true; fail after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


class Served:
    """`porte serve` as its own process group, on 127.0.0.1:``port``."""

    def __init__(self, settings: Settings, port: int, workdir: Path, *, workers: int = 1, **env):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / f"serve-{port}-{time.monotonic_ns()}.log"
        self.env = settings_env(settings, public_base_url=self.url, **env)
        self.workers = workers
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> Served:
        fh = self.log.open("w")
        self.proc = subprocess.Popen(
            [PORTE, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=self.workdir,  # no developer's .env is read
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    async def ready(self, within: float = 60) -> None:
        """Wait until /health answers 200 (and, with workers, every worker has started)."""

        async def ok() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"porte serve exited early:\n{self.tail()}")
            if self.workers > 1 and len(self.worker_pids()) < self.workers:
                return False
            try:
                async with httpx.AsyncClient(timeout=5) as c:
                    return (await c.get(self.url + "/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ok, within, f"porte serve on port {self.port}", every=0.2)

    def worker_pids(self) -> list[int]:
        """The processes serving requests (the server itself when it has one worker)."""
        if self.workers == 1:
            return [self.pid]
        # uvicorn's supervisor: workers are its children (multiprocessing's helper excluded)
        return [p for p in children(self.pid) if _alive(p) and self._is_worker(p)]

    @staticmethod
    def _is_worker(pid: int) -> bool:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"multiprocessing.resource_tracker" not in cmd

    async def wait_exit(self, within: float) -> int:
        """Wait (bounded) for the server to exit; its return code."""
        assert self.proc is not None
        proc = self.proc
        await wait_until(lambda: proc.poll() is not None, within, "porte serve to exit", 0.05)
        return proc.returncode

    def kill_all(self) -> None:
        """SIGKILL the whole process group (cleanup; no-op once it has exited)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
