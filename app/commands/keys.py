"""`porte keys generate | rotate`: encryption keys for personal data."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime

import typer

from app.commands import failed
from app.config import DEFAULT_SECRET, get_settings
from app.db import owner_engine
from app.i18n import _, number


def register(cli: typer.Typer) -> None:
    """Add the ``keys`` group (its length: the declarations of generate and rotate)."""
    keys = typer.Typer(
        help="Encryption keys for personal data and two-factor secrets (AES-256-GCM)."
    )
    cli.add_typer(keys, name="keys")

    @keys.command()
    def generate() -> None:
        """Print a new data key (added to the existing ones) and the HMAC and secret keys the
        environment lacks (in development and demo modes, those of the local secrets file, so
        that data already stored stays readable)."""
        from app.config import Settings
        from app.services.access.crypto import generate_key

        s = get_settings()
        given = Settings()  # the environment alone, without the local secrets file
        kid = datetime.now(UTC).strftime("k%Y%m%d%H%M%S")
        kmap = dict(s.data_key_map)
        kmap[kid] = generate_key()
        typer.echo(
            "# "
            + _(
                "Put these in the service's environment, restart it, then run "
                "`porte keys rotate`. Keep the old keys until the rotation has finished."
            )
        )
        if s.local_secrets is not None:
            typer.echo(
                "# "
                + _("Values not in the environment come from {path}.").format(
                    path=s.local_secrets.path
                )
            )
        typer.echo(f"PORTE_DATA_KEYS='{json.dumps(kmap)}'")
        typer.echo(f"PORTE_DATA_KEY_ID={kid}")
        if not given.hmac_key:
            typer.echo(f"PORTE_HMAC_KEY={s.hmac_key or secrets.token_urlsafe(48)}")
        else:
            typer.echo(
                "# " + _("PORTE_HMAC_KEY is set: keep it (duplicate detection depends on it).")
            )
        if given.secret_key == DEFAULT_SECRET:
            current = s.secret_key if s.secret_key != DEFAULT_SECRET else None
            typer.echo(f"PORTE_SECRET_KEY={current or secrets.token_urlsafe(48)}")

    @keys.command()
    def rotate(batch: int = typer.Option(500, help="Rows per transaction.")) -> None:
        """Re-encrypt every stored value with PORTE_DATA_KEY_ID, in short batches (no downtime):
        supporters' personal data, privacy requests and accounts' two-factor (TOTP) secrets."""
        from app.services.access.crypto import DecryptionFailed, KeyError_, rotate_account_secrets
        from app.services.access.crypto import rotate as run

        s = get_settings()

        async def both() -> tuple[int, int]:
            async with owner_engine(s) as engine:
                rows = await run(
                    engine,
                    s,
                    batch=batch,
                    progress=lambda d: typer.echo(
                        _("  {n} rows re-encrypted…").format(n=number(d))
                    ),
                )
                secrets_done = await rotate_account_secrets(
                    engine,
                    s,
                    batch=batch,
                    progress=lambda d: typer.echo(
                        _("  {n} two-factor secrets re-encrypted…").format(n=number(d))
                    ),
                )
            return rows, secrets_done

        try:
            n, accounts = asyncio.run(both())
        except (DecryptionFailed, KeyError_) as exc:
            raise failed(
                _(
                    "Rotation stopped: {error}. Rows done so far stay valid; fix the keys and "
                    "run it again."
                ).format(error=exc)
            ) from None
        typer.echo(
            _(
                "Done: {n} rows and {accounts} account(s) with two-factor sign-in now use key "
                "{key}. Old keys can be removed from PORTE_DATA_KEYS."
            ).format(n=number(n), accounts=number(accounts), key=s.data_key_id)
        )
