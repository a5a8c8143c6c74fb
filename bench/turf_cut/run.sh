#!/bin/sh
# One command: bench/turf_cut/run.sh  (same as .venv/bin/python -m bench.turf_cut)
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.turf_cut "$@"
