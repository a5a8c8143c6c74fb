"""The ``porte`` command: serve, demo, db, import, and the commands of app/commands/."""

from __future__ import annotations

import typer

from app.commands import (
    admin,
    allocation,
    basemap,
    db,
    demo,
    geocode,
    imports,
    keys,
    purge,
    rank,
    serve,
    supporters,
)

cli = typer.Typer(
    help="Porte-à-porte: door-to-door canvassing maps that keep precise addresses private.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


# Each command module registers its commands with ``register(cli)``.
for _module in (
    admin,
    allocation,
    basemap,
    db,
    demo,
    geocode,
    imports,
    keys,
    purge,
    rank,
    serve,
    supporters,
):
    _module.register(cli)


def main() -> None:
    """Entry point of the ``porte`` console script."""
    cli()


if __name__ == "__main__":
    main()
