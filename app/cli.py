"""The ``porte`` command: serve, demo, db, import, and the commands of app/commands/."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from app import commands

cli = typer.Typer(
    help="Porte-à-porte: door-to-door canvassing maps that keep precise addresses private.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _load_commands() -> None:
    """Each module of app/commands registers its commands with ``register(cli)``."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(cli)


_load_commands()


def main() -> None:
    """Entry point of the ``porte`` console script."""
    cli()


if __name__ == "__main__":
    main()
