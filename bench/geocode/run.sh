#!/bin/sh
# One command: bench/geocode/run.sh  (same as .venv/bin/python -m bench.geocode)
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.geocode "$@"
