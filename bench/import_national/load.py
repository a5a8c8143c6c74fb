"""`python -m bench.import_national.load KIND FILE OWNER_URL`: one import, as `porte import KIND`
runs it (same importer, progress bar forced on with PORTE_PROGRESS=1), without the allocation
refresh the command runs after it (measured by bench/allocation). Prints the report as JSON, with
the process's peak memory."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


def main() -> None:
    kind, file, url = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if kind == "addresses":
        from app.services.reference.imports.addresses import import_addresses as run
    elif kind == "tiles":
        from app.services.reference.imports.tiles import import_tiles as run
    elif kind == "districts":
        from app.services.reference.imports.districts import import_districts as run
    else:
        raise SystemExit(f"unknown import {kind!r}: addresses, tiles or districts")
    from app.commands.progress import ProgressBar

    report = asyncio.run(run(url, file, on_progress=ProgressBar()))
    out = report.as_dict()
    out.pop("communes", None)
    out["peak_rss"] = peak_rss()
    print(json.dumps(out, default=str))


def peak_rss() -> int:
    """This process's peak resident memory (bytes), from /proc (VmHWM).

    Not ``wait4``'s ru_maxrss in the parent: Linux carries the RSS the forked copy of the parent
    had at exec into it, so a parent holding 260 MB would make every child look that big.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
