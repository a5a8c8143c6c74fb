"""Ministry of the Interior results per polling station into ``election_result`` and
``election_candidate_result``.

Both layouts are read: *wide* (one row per station, candidate blocks ``Voix 1``, ``Voix 2``… or
pandas-style ``Voix``, ``Voix.1``…) and *long* (one row per candidate, a single ``Voix`` column).
Numbers may be French-formatted (``"82,59%"``, ``1 234``, ``48,12``). Rows are keyed on the
polling-station code (``codeBureauVote``, else built from the commune and station columns). A
station with results but no contour is kept and reported; a file whose codes match no district is
refused. Re-importing an election name replaces its results.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Unpack

import asyncpg

from app.i18n import _
from app.services.reference.imports.common import ImportReport, ReferenceImport, RunOptions, fail
from app.services.reference.imports.csvinput import open_csv

KEY = re.compile(r"^\d[\dAB]\d{3}_\w{4}$")
TOTALS = {
    "inscrits": ["inscrits"],
    "votants": ["votants"],
    "abstentions": ["abstentions"],
    "exprimes": ["exprimes"],
    "blancs": ["blancs"],
    "nuls": ["nuls"],
}
CAND = {
    "position": [
        "numero de panneau",
        "n°panneau",
        "n.pan.",
        "no liste",
        "n°liste",
        "numero de liste",
        "no panneau",
    ],
    "nuance": ["nuance liste", "nuance candidat", "nuance", "code nuance"],
    "label": ["libelle abrege de liste", "libelle de liste", "liste", "binome"],
    "nom": ["nom candidat", "nom"],
    "prenom": ["prenom candidat", "prenom"],
    "voix": ["voix"],
}
KEY_FIELDS = ["codebureauvote", "code_bv", "code bureau de vote", "code_bureau_vote"]
COMMUNE_FIELDS = ["code commune", "code de la commune", "codecommune"]
DEP_FIELDS = ["code departement", "code du departement"]
BV_FIELDS = ["code bv", "code du b.vote", "code b.vote", "no bureau vote", "numero bureau vote"]


def fold(name: str) -> str:
    """Lower case without accents or repeated spaces (for matching column names)."""
    s = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return re.sub(r"\s+", " ", s)


def french_number(value: str) -> float | None:
    """``"82,59%"`` -> 82.59, ``"1 234"`` -> 1234.0, ``""`` -> None; ValueError otherwise."""
    v = value.strip()
    if not v:
        return None
    v = v.replace("\u202f", "").replace("\xa0", "").replace(" ", "").rstrip("%")
    return float(v.replace(",", "."))


def _int(value: str) -> int | None:
    f = french_number(value)
    if f is None:
        return None
    if not f.is_integer():
        raise ValueError(_("{value!r} is not a whole number").format(value=value))
    return int(f)


@dataclass
class Layout:
    """Where things are in the header."""

    fmt: str  # 'wide' | 'long'
    key: int | None
    commune: int | None
    dep: int | None
    bv: int | None
    totals: dict[str, int]
    blocks: dict[int, dict[str, int]] = field(default_factory=dict)


def _split(h: str) -> tuple[str, int | None, str]:
    """('voix', 3, 'numbered') for 'Voix 3'; ('voix', 2, 'pandas') for 'Voix.1'."""
    f = fold(h)
    m = re.match(r"^(.*\S)\s+(\d+)$", f)
    if m:
        return m.group(1), int(m.group(2)), "numbered"
    m = re.match(r"^(.*)\.(\d+)$", f)
    if m and m.group(1):
        return m.group(1), int(m.group(2)) + 1, "pandas"
    return f, None, "plain"


def detect_layout(path: Path, header: list[str]) -> Layout:
    """Find the key, totals and candidate columns; wide or long."""
    folded = [fold(h) for h in header]
    pos = {}
    for i, f in enumerate(folded):
        pos.setdefault(f, i)

    def first(names):
        for n in names:
            if n in pos:
                return pos[n]
        return None

    key = first(KEY_FIELDS)
    commune, dep, bv = first(COMMUNE_FIELDS), first(DEP_FIELDS), first(BV_FIELDS)
    if key is None and (commune is None or bv is None):
        raise fail(
            path,
            _(
                "missing required column: the polling-station code (codeBureauVote), or the "
                "commune and station columns (Code commune + Code BV). The header has: {shown}."
            ).format(shown=", ".join(header[:12]) + (", …" if len(header) > 12 else "")),
            line=1,
        )
    totals = {k: first(v) for k, v in TOTALS.items()}
    if totals["inscrits"] is None:
        raise fail(path, _("missing required column: Inscrits."), line=1)
    totals = {k: v for k, v in totals.items() if v is not None}

    split = [_split(h) for h in header]
    numbered = [(b, k) for b, k, style in split if style == "numbered" and b == "voix"]
    pandas = [(b, k) for b, k, style in split if style == "pandas" and b == "voix"]
    if numbered or pandas:
        style = "numbered" if numbered else "pandas"
        blocks: dict[int, dict[str, int]] = {}
        for i, (b, k, st) in enumerate(split):
            if style == "pandas" and st == "plain":
                k, st = 1, "pandas"
            if st != style or k is None:
                continue
            for role, names in CAND.items():
                if b in names:
                    cur = blocks.setdefault(k, {})
                    # prefer the earliest alias in CAND's list
                    if role not in cur or names.index(b) < names.index(
                        fold_base(header, cur[role])
                    ):
                        cur[role] = i
        blocks = {k: v for k, v in blocks.items() if "voix" in v}
        return Layout("wide", key, commune, dep, bv, totals, dict(sorted(blocks.items())))
    cand = {}
    for role, names in CAND.items():
        idx = first(names)
        if idx is not None:
            cand[role] = idx
    if "voix" not in cand:
        raise fail(
            path,
            _("missing required column: Voix (long format) or Voix 1, Voix 2, … (wide format)."),
            line=1,
        )
    return Layout("long", key, commune, dep, bv, totals, {0: cand})


def fold_base(header: list[str], i: int) -> str:
    """The folded base name of header column i (without its block number)."""
    return _split(header[i])[0]


def _station(row: list[str], lay: Layout) -> str:
    if lay.key is not None and row[lay.key].strip():
        return row[lay.key].strip()
    commune = row[lay.commune].strip() if lay.commune is not None else ""
    if len(commune) <= 3 and lay.dep is not None:
        commune = row[lay.dep].strip().zfill(2) + commune.zfill(3)
    bv = row[lay.bv].strip() if lay.bv is not None else ""
    return f"{commune}_{bv.zfill(4)}"


def _label(row: list[str], cols: dict[str, int]) -> str | None:
    if "label" in cols and row[cols["label"]].strip():
        return row[cols["label"]].strip()
    parts = [row[cols[k]].strip() for k in ("nom", "prenom") if k in cols]
    return " ".join(p for p in parts if p) or None


def election_name_from(path: Path) -> str:
    """A default election name from a file name (``legislatives_2024_t1_bv_9213.csv`` ->
    ``legislatives_2024_t1``)."""
    stem = path.name.split(".")[0]
    return re.sub(r"_bv(_.*)?$", "", stem)


@dataclass
class _Results:
    """What the file holds, per station and per candidate, keyed as the tables are."""

    stations: dict[str, tuple] = field(default_factory=dict)
    station_line: dict[str, int] = field(default_factory=dict)
    candidates: dict[tuple[str, int], tuple] = field(default_factory=dict)


async def import_results(
    owner_url: str,
    path: Path | str,
    *,
    election: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    **options: Unpack[RunOptions],
) -> ImportReport:
    """Import one election's results per polling station in one transaction."""
    path = Path(path)
    name = (election or election_name_from(path)).strip()
    if not name or len(name) > 100:
        raise fail(path, "--election must be a name of 1 to 100 characters.")
    with ReferenceImport("results", path, **options) as run:
        found = _Results()
        with open_csv(
            path,
            delimiters=[";", ","],
            delimiter=delimiter,
            encoding=encoding,
            hint_columns=KEY_FIELDS + ["inscrits"],
        ) as inp:
            run.start_progress(inp.size)
            lay = detect_layout(path, inp.header)
            n = len(inp.header)
            for row in inp.reader:
                if row:
                    run.report.rows_read += 1
                    _read_row(run, row, inp.reader.line_num, n, lay, found)
                    if run.report.rows_read % 10_000 == 0:
                        run.progress(inp.position, run.report.rows_read)
            run.progress_finished()
        run.check_rejects()
        if run.report.rows_read == 0:
            raise fail(path, _("the file has a header but no rows."), line=2)
        async with run.transaction(owner_url) as conn:
            await _store(conn, run, name, lay, found)
    return run.report


def _read_row(
    run: ReferenceImport, row: list[str], line: int, n: int, lay: Layout, found: _Results
) -> None:
    """One row: its station's totals and its candidates' votes, or a rejected row."""
    log, stations, candidates = run.log, found.stations, found.candidates
    if len(row) != n:
        log.reject(
            line,
            "",
            _("{n} fields instead of {expected}").format(n=len(row), expected=n),
        )
        return
    code = _station(row, lay)
    if not KEY.match(code):
        why = _("{code!r} is not a polling-station code like 92002_0001").format(code=code)
        log.reject(line, "codeBureauVote", why)
        return
    try:
        totals = {k: _int(row[i]) for k, i in lay.totals.items()}
    except ValueError as exc:
        log.reject(line, "totals", str(exc))
        return
    if lay.fmt == "wide" and code in stations:
        raise fail(
            run.path,
            _(
                "duplicated polling station {code} on lines {first} and {line}: a wide results "
                "file has one row per station."
            ).format(code=code, first=found.station_line[code], line=line),
            line=line,
        )
    if code not in stations:
        stations[code] = (
            code,
            code.split("_")[0],
            *(totals.get(k) for k in ("inscrits", "votants", "abstentions", "exprimes")),
            *(totals.get(k) for k in ("blancs", "nuls")),
        )
        found.station_line[code] = line
    try:
        for k, cols in lay.blocks.items():
            voix = _int(row[cols["voix"]])
            raw_pos = row[cols["position"]] if "position" in cols else ""
            position = _int(raw_pos) if raw_pos.strip() else None
            if voix is None and position is None:
                continue  # fewer candidates in this station
            if position is None:
                position = k
            if (code, position) in candidates:
                raise fail(
                    run.path,
                    _("duplicated candidate {position} for polling station {code}.").format(
                        position=position, code=code
                    ),
                    line=line,
                )
            nuance = row[cols["nuance"]].strip() if "nuance" in cols else None
            candidates[(code, position)] = (code, position, nuance or None, _label(row, cols), voix)
    except ValueError as exc:
        log.reject(line, "Voix", str(exc))


STATION_COLUMNS = [
    "election_id", "district_code", "commune_code", "inscrits", "votants", "abstentions",
    "exprimes", "blancs", "nuls",
]  # fmt: skip
CANDIDATE_COLUMNS = ["election_id", "district_code", "position", "nuance", "label", "voix"]


async def _store(
    conn: asyncpg.Connection, run: ReferenceImport, name: str, lay: Layout, found: _Results
) -> None:
    """Replace the election's results; stations without a contour are kept and reported."""
    path, stations = run.path, found.stations
    known = {r["code"] for r in await conn.fetch("SELECT code FROM district")}
    if not known:
        raise fail(
            path,
            _(
                "no district is loaded yet: import the districts first "
                "(porte import districts FILE)."
            ),
        )
    unmatched = sorted(set(stations) - known)
    if len(unmatched) == len(stations):
        raise fail(
            path,
            _(
                "none of the {n} polling-station codes matches a loaded district "
                "(e.g. {example}). Check that the file covers the same area as the "
                "districts and that the codes look like 92002_0001."
            ).format(n=len(stations), example=unmatched[0]),
        )
    eid = await conn.fetchval(
        "INSERT INTO election (name, source_file) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET source_file = excluded.source_file,"
        " loaded_at = clock_timestamp() RETURNING id",
        name,
        path.name,
    )
    await conn.execute("DELETE FROM election_result WHERE election_id = $1", eid)
    await conn.execute("DELETE FROM election_candidate_result WHERE election_id = $1", eid)
    await conn.copy_records_to_table(
        "election_result",
        records=[(eid, *s) for s in stations.values()],
        columns=STATION_COLUMNS,
    )
    await conn.copy_records_to_table(
        "election_candidate_result",
        records=[(eid, *c) for c in found.candidates.values()],
        columns=CANDIDATE_COLUMNS,
    )
    for code in unmatched:
        run.log.note(
            found.station_line[code],
            "codeBureauVote",
            "unmatched",
            _("polling station {code} has results but no contour (kept)").format(code=code),
        )
    run.counted(loaded=run.report.rows_read - run.log.rejected - run.log.skipped)
    matched = len(stations) - len(unmatched)
    run.report.details.update(
        election=name,
        election_id=eid,
        format=lay.fmt,
        stations=len(stations),
        matched=matched,
        unmatched=unmatched,
        candidates=len(found.candidates),
    )
    note = _(
        "election {name!r}: {n} polling stations ({format} format), {joined} joined to a district"
    ).format(name=name, n=len(stations), format=lay.fmt, joined=matched)
    if unmatched:
        note += _("; no contour for {codes} (kept)").format(codes=", ".join(unmatched))
    run.report.notes.append(note + ".")
    await run.record(conn, source="interieur")
