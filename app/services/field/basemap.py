"""The campaign's own vector basemap: a PMTiles archive read in place (range reads, no tile server).

The service serves the tiles of one archive at ``/basemap/{z}/{x}/{y}.mvt`` (same origin as the
pages, so no third party learns where volunteers stand). ``open_archive`` checks a file before it
is used (PMTiles, vector tiles, at least one layer) and ``check_coverage`` that it covers the area
the campaigns work in; both raise ``BasemapError`` with a message naming the problem and the area
the archive covers. ``BasemapStore`` holds the archive of a running service and re-opens it when
the file changes (``porte basemap import`` while the service runs).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mmap
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtiles.tile import (
    Compression,
    MagicNumberNotFound,
    SpecVersionUnsupported,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)

from app.errors import InvalidInput
from app.i18n import _

ODBL_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"


class BasemapError(InvalidInput):
    """The basemap archive cannot be used; the message says why and what area it covers."""


@dataclass(frozen=True)
class Bounds:
    """A longitude/latitude box (WGS84)."""

    west: float
    south: float
    east: float
    north: float

    def contains(self, other: Bounds, slack: float = 1e-4) -> bool:
        return (
            other.west >= self.west - slack
            and other.south >= self.south - slack
            and other.east <= self.east + slack
            and other.north <= self.north + slack
        )

    def describe(self) -> str:
        return _("longitude {west:.4f} to {east:.4f}, latitude {south:.4f} to {north:.4f}").format(
            west=self.west, east=self.east, south=self.south, north=self.north
        )

    def as_list(self) -> list[float]:
        return [self.west, self.south, self.east, self.north]


@dataclass
class Archive:
    """An open PMTiles archive of vector tiles."""

    path: Path
    header: dict[str, Any]
    metadata: dict[str, Any]
    version: str
    size: int
    _map: mmap.mmap
    _file: Any
    _dirs: OrderedDict[tuple[int, int], list] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bounds(self) -> Bounds:
        h = self.header
        w, s, e, n = (h[k] / 1e7 for k in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7"))
        return Bounds(w, s, e, n)

    @property
    def min_zoom(self) -> int:
        return int(self.header["min_zoom"])

    @property
    def max_zoom(self) -> int:
        return int(self.header["max_zoom"])

    @property
    def gzipped(self) -> bool:
        return self.header["tile_compression"] == Compression.GZIP

    @property
    def layers(self) -> list[str]:
        return [str(v.get("id")) for v in self.metadata.get("vector_layers") or []]

    @property
    def placeholder(self) -> bool:
        return bool(self.metadata.get("porte:placeholder"))

    @property
    def attribution(self) -> str:
        text = self.metadata.get("attribution") or ""
        if not text and not self.placeholder:
            text = ODBL_ATTRIBUTION  # public builds of OpenStreetMap data
        return str(text)

    def _bytes(self, offset: int, length: int) -> bytes:
        return self._map[offset : offset + length]

    def _directory(self, offset: int, length: int) -> list:
        key = (offset, length)
        with self._lock:
            hit = self._dirs.get(key)
            if hit is not None:
                self._dirs.move_to_end(key)
                return hit
        entries = deserialize_directory(self._bytes(offset, length))
        with self._lock:
            self._dirs[key] = entries
            while len(self._dirs) > 64:  # leaf directories of a département: a few MB at most
                self._dirs.popitem(last=False)
        return entries

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile's bytes as stored (gzip-compressed when ``gzipped``), or None."""
        if z < self.min_zoom or z > self.max_zoom:
            return None
        tile_id = zxy_to_tileid(z, x, y)
        h = self.header
        offset, length = h["root_offset"], h["root_length"]
        for _depth in range(4):
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length == 0:  # a leaf directory
                offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
                continue
            data = self._bytes(h["tile_data_offset"] + entry.offset, entry.length)
            return data or None
        return None

    def info(self) -> dict[str, Any]:
        """What the pages and ``porte basemap info`` need to know."""
        return {
            "name": self.metadata.get("name") or self.path.name,
            "version": self.version,
            "bounds": self.bounds.as_list(),
            "minzoom": self.min_zoom,
            "maxzoom": self.max_zoom,
            "layers": self.layers,
            "attribution": self.attribution,
            "placeholder": self.placeholder,
            "size_bytes": self.size,
        }

    def close(self) -> None:
        self._map.close()
        self._file.close()


def _header(m: mmap.mmap, name: str) -> tuple[dict[str, Any], str]:
    """The archive's header, checked (PMTiles version 3, vector tiles, gzip or no compression),
    and the area it covers as words; BasemapError otherwise."""
    try:
        header = deserialize_header(m[0:127])
    except MagicNumberNotFound:
        raise BasemapError(
            _(
                "{path} is not a PMTiles archive (it does not start with 'PMTiles'). Convert "
                "MBTiles with `pmtiles convert`, or cut an extract: see docs/maps.md."
            ).format(path=name),
            field="basemap",
        ) from None
    except (SpecVersionUnsupported, ValueError):
        raise BasemapError(
            _(
                "{path} is a PMTiles archive of a version other than 3: convert it with a "
                "current `pmtiles` tool."
            ).format(path=name),
            field="basemap",
        ) from None
    area = Bounds(
        header["min_lon_e7"] / 1e7,
        header["min_lat_e7"] / 1e7,
        header["max_lon_e7"] / 1e7,
        header["max_lat_e7"] / 1e7,
    ).describe()
    if header["tile_type"] != TileType.MVT:
        raise BasemapError(
            _(
                "{path} holds {kind} images, not vector tiles: the pages need a vector "
                "basemap (MVT) of the area ({area})."
            ).format(path=name, kind=header["tile_type"].name, area=area),
            field="basemap",
        )
    if header["tile_compression"] not in (Compression.NONE, Compression.GZIP):
        raise BasemapError(
            _(
                "{path} compresses its tiles with {c}; only gzip or none can be served to "
                "every browser. Re-cut it with `pmtiles extract` (gzip by default)."
            ).format(path=name, c=header["tile_compression"].name),
            field="basemap",
        )
    return header, area


def _metadata(m: mmap.mmap, header: dict[str, Any], name: str, area: str) -> dict[str, Any]:
    """The archive's metadata, checked: readable, with vector layers, and tiles in it."""
    raw = m[header["metadata_offset"] : header["metadata_offset"] + header["metadata_length"]]
    try:
        if header["internal_compression"] == Compression.GZIP:
            raw = gzip.decompress(raw)
        metadata = json.loads(raw or b"{}")
    except (OSError, ValueError):
        raise BasemapError(
            _("{path}: its metadata is unreadable (damaged file?).").format(path=name),
            field="basemap",
        ) from None
    if not isinstance(metadata, dict) or not metadata.get("vector_layers"):
        raise BasemapError(
            _(
                "{path} has no vector layer (its metadata lists no 'vector_layers'): nothing "
                "could be drawn. It covers {area}."
            ).format(path=name, area=area),
            field="basemap",
        )
    if header["tile_entries_count"] == 0:
        raise BasemapError(_("{path} holds no tile at all.").format(path=name), field="basemap")
    return metadata


def open_archive(path: Path) -> Archive:
    """Open and check a PMTiles archive of vector tiles; BasemapError says what is wrong."""
    path = Path(path)
    name = str(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BasemapError(
            _("Cannot read the basemap file {path}: {reason}.").format(
                path=name, reason=exc.strerror or exc
            ),
            field="basemap",
        ) from exc
    size = os.fstat(f.fileno()).st_size
    if size < 127:
        f.close()
        raise BasemapError(
            _("{path} is not a PMTiles archive (only {n} bytes).").format(path=name, n=size),
            field="basemap",
        )
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        header, area = _header(m, name)
        metadata = _metadata(m, header, name, area)
    except BasemapError:
        m.close()
        f.close()
        raise
    version = hashlib.sha256(m[0:127] + str(size).encode()).hexdigest()[:16]
    return Archive(path, dict(header), metadata, version, size, m, f)


def check_coverage(archive: Archive, area: Bounds | None, what: str) -> None:
    """Refuse an archive whose bounds do not hold ``area`` (the districts campaigns work in)."""
    if area is None:
        return
    if not archive.bounds.contains(area):
        raise BasemapError(
            _(
                "{path} covers {covers}, but {what} lie at {area}: cut an extract that holds "
                "them (docs/maps.md)."
            ).format(
                path=archive.path.name,
                covers=archive.bounds.describe(),
                what=what,
                area=area.describe(),
            ),
            field="basemap",
        )


async def area_to_cover(conn, campaign_id: str | None = None) -> tuple[Bounds | None, str]:
    """The box the basemap must hold: the districts that hold campaigns' turfs (one campaign's
    with ``campaign_id``); where there is no turf yet, every district loaded; where no district
    is loaded either, every door. Returns (None, ...) when nothing is loaded."""
    from sqlalchemy import text

    turf_filter = "WHERE t.campaign_id = CAST(:c AS uuid)" if campaign_id else ""
    queries = [
        (
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), n FROM (SELECT "
            "ST_Extent(d.geom) AS e, count(DISTINCT d.code) AS n FROM district d WHERE EXISTS "
            f"(SELECT 1 FROM turf t {turf_filter} {'AND' if campaign_id else 'WHERE'} "
            "ST_Intersects(t.geom, d.geom))) s",
            _("the {n} polling stations holding the campaigns' turfs"),
        ),
        (
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), n FROM (SELECT "
            "ST_Extent(geom) AS e, count(*) AS n FROM district) s",
            _("the {n} polling stations loaded"),
        ),
        (
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), n FROM (SELECT "
            "ST_Extent(geom) AS e, count(*) AS n FROM address) s",
            _("the {n} doors loaded"),
        ),
    ]
    if campaign_id:
        queries = queries[:1]
    params = {"c": campaign_id} if campaign_id else {}
    for sql, what in queries:
        row = (await conn.execute(text(sql), params)).first()
        if row is not None and row[0] is not None and row[4]:
            return Bounds(row[0], row[1], row[2], row[3]), what.format(n=row[4])
    return None, ""


class BasemapStore:
    """The archive a running service serves; re-opened when its file changes (checked at most
    every two seconds), so `porte basemap import` takes effect without a restart."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self._archive: Archive | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self.error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> Archive | None:
        if self.path is None:
            return None
        now = time.monotonic()
        if now - self._checked < 2.0 and (self._archive is not None or self.error):
            return self._archive
        with self._lock:
            self._checked = now
            try:
                st = self.path.stat()
            except OSError:
                self._drop(_("no basemap file at {path}").format(path=self.path))
                return None
            stamp = (st.st_mtime, st.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    archive = open_archive(self.path)
                except BasemapError as exc:
                    self._drop(exc.detail)
                    return None
                old, self._archive, self.error = self._archive, archive, None
                if old is not None:
                    old.close()
            return self._archive

    def _drop(self, reason: str) -> None:
        self.error = reason
        self._stamp = None
        if self._archive is not None:
            self._archive.close()
            self._archive = None
