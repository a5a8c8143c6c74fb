"""The ``porte`` command: serve, demo, db, import, and the commands of app/commands/."""

from __future__ import annotations

from types import ModuleType

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


def choose_language(lang: str | None) -> str:
    """The language of the command's messages: ``--lang``, else ``PORTE_LANG`` (environment or
    .env), else French. ``fr_FR.UTF-8`` and ``en-GB`` count as ``fr`` and ``en``."""
    from app.i18n import DEFAULT, SUPPORTED

    if lang is None:
        try:
            from app.config import Settings

            return Settings().lang
        except Exception:  # noqa: BLE001 - an unrelated setting is wrong: its command will say so
            return DEFAULT
    code = lang.strip().lower().replace("_", "-").split("-")[0].split(".")[0]
    if code not in SUPPORTED:
        raise typer.BadParameter(
            f"'{lang}' is not a language of Porte-à-porte: use fr or en.", param_hint="--lang"
        )
    return code


@cli.callback()
def _root(
    ctx: typer.Context,
    lang: str | None = typer.Option(
        None,
        "--lang",
        envvar="PORTE_LANG",
        help="Language of the messages: fr (default) or en; also PORTE_LANG.",
    ),
) -> None:
    """Porte-à-porte: door-to-door canvassing maps that keep precise addresses private."""
    from app.i18n import reset_language, set_language

    token = set_language(choose_language(lang))
    ctx.call_on_close(lambda: reset_language(token))


def _register(*modules: ModuleType) -> None:
    """Each command module registers its commands with ``register(cli)``; ``--help`` lists
    them in this order."""
    for module in modules:
        module.register(cli)


_register(
    admin, allocation, basemap, db, demo, geocode, imports, keys, purge, rank, serve, supporters
)


def main() -> None:
    """Entry point of the ``porte`` console script."""
    cli()


if __name__ == "__main__":
    main()
