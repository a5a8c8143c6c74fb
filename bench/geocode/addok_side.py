"""Runs INSIDE the addok virtualenv (not the project's): query addok one address at a time.

Usage: python addok_side.py QUERIES.json RESULTS.json   (ADDOK_CONFIG_MODULE must be set)
"""

import json
import sys
import time

from addok.config import config

config.load()
from addok.core import search  # noqa: E402  (config must be loaded first)

with open(sys.argv[1]) as fh:
    queries = json.load(fh)
out = []
latencies = []
search(queries[0], limit=1)  # warm-up
t0 = time.perf_counter()
for q in queries:
    t = time.perf_counter()
    res = search(q, limit=1)
    latencies.append(time.perf_counter() - t)
    if not res:
        out.append(None)
        continue
    r = res[0]
    out.append(
        {
            "type": r.type,
            "lon": float(r.lon),
            "lat": float(r.lat),
            "citycode": getattr(r, "citycode", None),
            "score": r.score,
            "housenumber": r.housenumber,
        }
    )
elapsed = time.perf_counter() - t0
with open(sys.argv[2], "w") as fh:
    json.dump({"seconds": elapsed, "results": out, "latencies": latencies}, fh)
