"""`porte geocode FILE`: check a CSV of addresses against the loaded doors before an import."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sys
import time
from pathlib import Path

import typer

from app.commands import failed
from app.config import get_settings
from app.dburl import resolve_urls
from app.i18n import _

OUT_COLUMNS = [
    "level",
    "score",
    "lon",
    "lat",
    "address_id",
    "commune",
    "street",
    "housenumber",
    "reason",
]


def register(cli: typer.Typer) -> None:
    """Add the ``geocode`` command."""

    @cli.command()
    def geocode(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, UTF-8."),
        column: str = typer.Option("address", help="Column holding the one-line address."),
        output: Path | None = typer.Option(None, "-o", help="Output CSV (default: stdout)."),
    ) -> None:
        """Geocode FILE with the local geocoder; writes it back with level, score, lon, lat…"""
        from app.csvsafe import SafeDictWriter
        from app.db import make_engine
        from app.services.people.geocoder import BATCH, geocode_parsed, parse_address

        with open(file, encoding="utf-8-sig", newline="") as fh:
            sample = fh.readline()
            fh.seek(0)
            reader = csv.DictReader(
                fh, delimiter=";" if sample.count(";") > sample.count(",") else ","
            )
            rows = list(reader)
            header = list(reader.fieldnames or [])
        if column not in header:
            raise failed(
                _(
                    "Column {column!r} not found; the header has: {columns}. Use --column NAME."
                ).format(column=column, columns=", ".join(header)),
                2,
            )

        async def run():
            engine = make_engine(resolve_urls(get_settings())[0], pool_size=1)
            out = []
            t0 = time.perf_counter()
            async with engine.connect() as conn:
                for i in range(0, len(rows), BATCH):
                    part = rows[i : i + BATCH]
                    out += await geocode_parsed(
                        conn, [parse_address(r[column] or "") for r in part]
                    )
                    typer.echo(
                        _("  {done}/{total} addresses ({rate:.0f}/s)").format(
                            done=len(out),
                            total=len(rows),
                            rate=len(out) / (time.perf_counter() - t0),
                        ),
                        err=True,
                    )
            await engine.dispose()
            return out

        results = asyncio.run(run())
        with contextlib.ExitStack() as stack:
            fh = (
                stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
                if output
                else sys.stdout
            )
            # The output is for a spreadsheet: no cell (the file's or the geocoder's) can run.
            w = SafeDictWriter(fh, fieldnames=header + [c for c in OUT_COLUMNS if c not in header])
            w.writeheader()
            for r, g in zip(rows, results, strict=True):
                d = g.as_dict()
                w.writerow({**r, **{c: d[c] for c in OUT_COLUMNS}})
        levels = {}
        for g in results:
            levels[g.level] = levels.get(g.level, 0) + 1
        typer.echo(
            _(
                "Levels: {levels}. Anything below housenumber goes to the review list after import."
            ).format(levels=", ".join(f"{k} {v}" for k, v in sorted(levels.items()))),
            err=True,
        )
