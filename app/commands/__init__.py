"""CLI command groups; each module defines ``register(cli: typer.Typer)``."""

from __future__ import annotations

import typer


def command_group(cli: typer.Typer, name: str, help: str) -> typer.Typer:
    """The group of commands ``porte <name> ...``; called alone, it shows its help."""
    group = typer.Typer(help=help, no_args_is_help=True)
    cli.add_typer(group, name=name)
    return group


def failed(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` in red on standard error; the exit (status ``code``) to raise."""
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)
