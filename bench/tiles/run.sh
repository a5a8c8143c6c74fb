#!/bin/sh
# Door-tile benchmark against tipg on a SYNTHETIC département: see bench/tiles/__main__.py.
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.tiles "$@"
