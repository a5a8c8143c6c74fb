#!/bin/sh
# One command: bench/soak/run.sh [--minutes 60]  (same as .venv/bin/python -m bench.soak; --help)
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.soak "$@"
