"""One import in its own process, so that the benchmark reads its peak memory (ru_maxrss).

    python -m bench.national.load tiles|districts|addresses OWNER_URL FILE [COMMUNES]

Prints the import's report as JSON, with the process's peak resident memory (VmHWM: since exec,
unlike ru_maxrss, which counts the parent's memory at fork). Doors are imported with
``source='synthetic'``: the national benchmark's files are SYNTHETIC.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


def main() -> None:
    """Run the importer named on the command line."""
    kind, url, path = sys.argv[1:4]
    communes = sys.argv[4] if len(sys.argv) > 4 else None
    if kind == "tiles":
        from app.services.reference.imports.tiles import import_tiles

        report = asyncio.run(import_tiles(url, path))
    elif kind == "districts":
        from app.services.reference.imports.districts import import_districts

        report = asyncio.run(import_districts(url, path))
    elif kind == "addresses":
        from app.services.reference.imports.addresses import import_addresses

        report = asyncio.run(import_addresses(url, path, communes=communes, source="synthetic"))
    else:
        raise SystemExit(f"unknown kind {kind!r}: tiles, districts or addresses")
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1])
    print(json.dumps({**report.as_dict(), "peak_kb": peak_kb}))


if __name__ == "__main__":
    main()
