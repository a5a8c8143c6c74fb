#!/bin/sh
# National benchmark on a SYNTHETIC country: see bench/national/__main__.py.
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.national "$@"
