#!/bin/sh
# Ranking benchmark on a SYNTHETIC département: see bench/ranking/__main__.py.
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.ranking "$@"
