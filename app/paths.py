"""Where the service's files are, in a checkout or in an installed package.

A checkout keeps ``static/`` (pages), ``alembic/`` (migrations) and ``data/`` (the sample) at its
top level; ``pip install .`` puts the same folders inside the package as ``app/_bundle/``
(pyproject.toml maps them). The checkout wins when the code runs from one, so an edit to a page or
a migration is seen at once.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE.parent
# A checkout has the project's pyproject.toml and its migrations beside app/ (an install has
# site-packages there, which may hold the alembic library itself: hence env.py and the name).
IN_CHECKOUT = (SOURCE_ROOT / "alembic" / "env.py").is_file() and 'name = "porte-a-porte"' in (
    (SOURCE_ROOT / "pyproject.toml").read_text("utf-8")
    if (SOURCE_ROOT / "pyproject.toml").is_file()
    else ""
)


def _folder(name: str) -> Path:
    return SOURCE_ROOT / name if IN_CHECKOUT else PACKAGE / "_bundle" / name


STATIC_DIR = _folder("static")
ALEMBIC_DIR = _folder("alembic")
DATA_DIR = _folder("data")


def state_dir() -> Path:
    """Where the service keeps its own state (private cluster, generated secrets).

    ``.porte/`` in a checkout; for an installed package ``$XDG_DATA_HOME/porte-a-porte``
    (``~/.local/share/porte-a-porte``), or ``/var/lib/porte-a-porte`` for root.
    """
    if IN_CHECKOUT:
        return SOURCE_ROOT / ".porte"
    if os.geteuid() == 0:
        return Path("/var/lib/porte-a-porte")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "porte-a-porte"
