"""INSEE/INSPIRE grid ids <-> squares (EPSG:3035). Pure functions, no I/O.

An id such as ``CRS3035RES200mN2875800E3756000`` names the square whose lower-left corner is
E (x) = 3756000, N (y) = 2875800 in EPSG:3035 (ETRS89-LAEA), with a side of 200 m.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from app.i18n import _

SRID = 3035
# The counts of a Filosofi 200 m tile, as the published file names its columns (the table
# insee_tile keeps the same names).
FILOSOFI_COUNTS = (
    "ind", "men", "men_pauv", "men_1ind", "men_5ind", "men_prop", "men_fmp", "ind_snv",
    "men_surf", "men_coll", "men_mais", "log_av45", "log_45_70", "log_70_90", "log_ap90",
    "log_inc", "log_soc", "ind_0_3", "ind_4_5", "ind_6_10", "ind_11_17", "ind_18_24",
    "ind_25_39", "ind_40_54", "ind_55_64", "ind_65_79", "ind_80p", "ind_inc",
)  # fmt: skip
_ID = re.compile(r"^CRS3035RES(\d+)(m|km)N(\d+)E(\d+)$", re.IGNORECASE)


class TileIdError(ValueError):
    """A tile id that does not follow the INSPIRE grid syntax."""


class Tile(NamedTuple):
    """A grid square: lower-left corner (east, north) and side, in metres (EPSG:3035)."""

    east: int
    north: int
    size: int

    @property
    def id(self) -> str:
        """The INSPIRE id of this square."""
        return tile_id(self.east, self.north, self.size)

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(xmin, ymin, xmax, ymax)."""
        return self.east, self.north, self.east + self.size, self.north + self.size

    def corners(self) -> list[tuple[int, int]]:
        """The four corners, counter-clockwise from the lower-left one."""
        x0, y0, x1, y1 = self.bounds
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]

    def contains(self, x: float, y: float) -> bool:
        """True when (x, y) lies in the half-open square [E, E+size) x [N, N+size)."""
        return self.east <= x < self.east + self.size and self.north <= y < self.north + self.size


def parse_tile_id(value: str) -> Tile:
    """Parse ``CRS3035RES200mN2875800E3756000`` into a Tile; raise TileIdError with the reason."""
    m = _ID.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise TileIdError(
            _(
                "{value!r} is not an INSPIRE grid id (expected like CRS3035RES200mN2875800E3756000)"
            ).format(value=value)
        )
    size = int(m.group(1)) * (1000 if m.group(2).lower() == "km" else 1)
    north, east = int(m.group(3)), int(m.group(4))
    if size <= 0:
        raise TileIdError(_("{value!r}: the grid resolution must be positive").format(value=value))
    if north % size or east % size:
        raise TileIdError(
            _("{value!r}: the corner N{north} E{east} is not on the {size} m grid").format(
                value=value, north=north, east=east, size=size
            )
        )
    return Tile(east, north, size)


def tile_id(east: int, north: int, size: int = 200) -> str:
    """The INSPIRE id of the square with this lower-left corner and side (metres)."""
    if size <= 0 or east % size or north % size:
        raise TileIdError(
            _("E{east} N{north} is not a corner of the {size} m grid").format(
                east=east, north=north, size=size
            )
        )
    return f"CRS3035RES{size}mN{north}E{east}"


def tile_at(x: float, y: float, size: int = 200) -> Tile:
    """The square of the grid that contains point (x, y) in EPSG:3035."""
    return Tile(math.floor(x / size) * size, math.floor(y / size) * size, size)


def square(value: str):
    """The shapely Polygon (EPSG:3035) of a tile id."""
    from shapely.geometry import Polygon

    return Polygon(parse_tile_id(value).corners())
