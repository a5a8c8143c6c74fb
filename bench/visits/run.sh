#!/bin/sh
# One command: bench/visits/run.sh  (same as .venv/bin/python -m bench.visits; --help for options)
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.visits "$@"
