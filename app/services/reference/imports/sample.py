"""Load the bundled sample: the 92-13 constituency (real tiles, contours, results; SYNTHETIC doors)
and the real doors of Bruz (BAL). Used by ``porte demo`` and the test suite.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from typing import Any

from app.importrun import OnProgress
from app.paths import DATA_DIR

SAMPLE_DIR = DATA_DIR / "sample_insee"
ADDRESSES_DIR = DATA_DIR / "addresses"
TILES = SAMPLE_DIR / "filosofi2019_carreaux_200m_9213.csv"
TILES_GPKG = SAMPLE_DIR / "filosofi2019_carreaux_200m_9213.gpkg"
DISTRICTS = SAMPLE_DIR / "contours_bv_9213.geojson"
# Every polling station of 92-13 with its constituency (the same data.gouv.fr file, as CSV).
CONSTITUENCIES = SAMPLE_DIR / "bureaux_de_vote_9213.csv"
# Loaded in this order: the last one is "the last loaded election" shown by /districts.
ELECTIONS = [
    ("legislatives_2022_t2", SAMPLE_DIR / "legislatives_2022_t2_bv_9213.csv"),
    ("europeennes_2024", SAMPLE_DIR / "europeennes_2024_bv_9213.csv"),
    ("legislatives_2024_t1", SAMPLE_DIR / "legislatives_2024_t1_bv_9213.csv"),
    ("legislatives_2024_t2", SAMPLE_DIR / "legislatives_2024_t2_bv_9213.csv"),
]
BRUZ_BAL = ADDRESSES_DIR / "bal_35047_bruz.csv"
SYNTHETIC_NAME = "synthetic_doors_9213.csv"
MAX_QUOTED = 5


async def load_sample_async(
    owner_url: str,
    *,
    quiet: bool = False,
    report_dir: Path | None = None,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Import every sample file (each import is its own transaction); return the reports.

    The imports' progress goes to ``on_progress`` (not when ``quiet``), the summaries are
    printed. The generated doors and the reports go to ``report_dir``, or to a temporary folder
    removed at the end (the few rows the sample's files skip are quoted in the summary itself).
    """
    progress = None if quiet else on_progress
    if report_dir is None:
        with tempfile.TemporaryDirectory(prefix="porte-sample-") as tmp:
            return await _load(owner_url, progress=progress, report_dir=Path(tmp), keep=False)
    return await _load(owner_url, progress=progress, report_dir=Path(report_dir), keep=True)


def _quote_rejects(report: Any) -> None:
    """Copy the first rows of a report CSV into the summary (its folder is about to go)."""
    path = report.report_path
    if path is not None and path.exists():
        lines = path.read_text("utf-8").splitlines()[1:]
        report.notes += [f"line {row}" for row in lines[:MAX_QUOTED]]
        if len(lines) > MAX_QUOTED:
            report.notes.append(f"... and {len(lines) - MAX_QUOTED} more")
    report.report_path = None


async def _load(
    owner_url: str, *, progress: OnProgress | None, report_dir: Path, keep: bool
) -> dict[str, Any]:
    from app.services.reference.imports.addresses import import_addresses
    from app.services.reference.imports.constituencies import import_constituencies
    from app.services.reference.imports.districts import import_districts
    from app.services.reference.imports.results import import_results
    from app.services.reference.imports.synthetic import generate_doors
    from app.services.reference.imports.tiles import import_tiles

    # A private folder per call: parallel test sessions must not share the generated file.
    report_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before any I/O)

    def rp(path: Path) -> Path:
        return report_dir / (path.name + ".rejects.csv")

    out: dict[str, Any] = {}

    def show(report) -> None:
        if not keep:
            _quote_rejects(report)
        out[report.kind if report.kind != "results" else report.details["election"]] = (
            report.as_dict()
        )
        print(report.summary())

    show(await import_tiles(owner_url, TILES, on_progress=progress, report_path=rp(TILES)))
    show(
        await import_districts(
            owner_url, DISTRICTS, on_progress=progress, report_path=rp(DISTRICTS)
        )
    )
    show(
        await import_constituencies(
            owner_url, CONSTITUENCIES, on_progress=progress, report_path=rp(CONSTITUENCIES)
        )
    )
    for name, path in ELECTIONS:
        show(
            await import_results(
                owner_url, path, election=name, on_progress=progress, report_path=rp(path)
            )
        )
    synthetic = report_dir / SYNTHETIC_NAME
    totals = generate_doors(TILES, DISTRICTS, synthetic)
    rep = await import_addresses(
        owner_url, synthetic, source="synthetic", on_progress=progress, report_path=rp(synthetic)
    )
    rep.kind = "synthetic_doors"
    rep.notes.append(
        f"SYNTHETIC doors (not real addresses): {totals['doors']:,.0f} doors for "
        f"{totals['households']:,.0f} households, generated from the INSEE tiles."
    )
    show(rep)
    rep = await import_addresses(
        owner_url, BRUZ_BAL, on_progress=progress, report_path=rp(BRUZ_BAL)
    )
    rep.kind = "bruz_doors"
    show(rep)
    from app.services.reference.allocation import refresh_if_stale

    state = await refresh_if_stale(owner_url)
    print(f"Tile-to-district allocation refreshed ({state.pairs or 0:,} tile/district pairs).")
    from app.services.reference.imports.common import connect

    async with connect(owner_url) as conn:
        await conn.execute("SELECT porte_refresh_district_shapes()")
    return out


def load_sample(
    owner_url: str,
    quiet: bool = False,
    report_dir: Path | None = None,
    on_progress: OnProgress | None = None,
) -> dict:
    """Synchronous wrapper (runs its own event loop, in a thread if one is already running)."""
    coro = load_sample_async(owner_url, quiet=quiet, report_dir=report_dir, on_progress=on_progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict = {}
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.update(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result
