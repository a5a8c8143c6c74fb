"""Cut a set of doors into balanced, compact turfs, each with a walking order (pure, no I/O).

Method: recursive bisection. A group of doors that must become ``k`` turfs is split in two
along its longest axis (principal component), into parts holding ``k1 = k // 2`` and
``k - k1`` turfs' worth of doors. Every turf is therefore a convex cell of the plane (an
intersection of half-planes): turfs never interleave, and they are about as compact as the
doors allow. When street names are known, each cut may move a little (within a balance budget)
to the position that splits the fewest streets, so streets stay whole where possible.

Balance: each door weighs what the organiser balances on: 1 (doors), its households (the work
in flats), or its estimated seconds of work. Every group's weight-per-turf stays within 60 % of
``tolerance`` of the global mean ``W / k`` (so ±9 % for the ±15 % promise), plus one door of
rounding (a tower block of 200 flats is one door: it cannot be split, and the plan says so).
``k = round(W / per_turf)`` (at least 1), so the mean is the closest achievable to the request.

Coordinates: metres in a local equirectangular projection centred on the doors (error well
under 0.1 % over a commune), see ``project_local``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon, mapping

from app.geo.walk import path_length, walk_order

EARTH_RADIUS_M = 6_371_008.8
DEGENERATE_BUFFER_M = 5.0


# ---------------------------------------------------------------- projection
@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular projection around (lon0, lat0): x east, y north, in metres."""

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _ky(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M

    def forward(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """(lon, lat) degrees -> (n, 2) metres."""
        return np.column_stack(
            [(np.asarray(lon) - self.lon0) * self._kx, (np.asarray(lat) - self.lat0) * self._ky]
        )

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) metres -> (n, 2) lon/lat degrees."""
        xy = np.asarray(xy, dtype=float)
        return np.column_stack([xy[:, 0] / self._kx + self.lon0, xy[:, 1] / self._ky + self.lat0])


def project_local(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, LocalProjection]:
    """Project lon/lat to metres around their centre; returns (xy, projection)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    proj = LocalProjection(
        float(lon.mean()) if len(lon) else 0.0, float(lat.mean()) if len(lat) else 0.0
    )
    return proj.forward(lon, lat), proj


# ---------------------------------------------------------------- splitting
def turf_count(total: float, per_turf: float) -> int:
    """How many turfs: the count whose mean size is nearest ``per_turf`` (at least 1).

    ``total`` and ``per_turf`` are in the measure the cut balances: doors, households or seconds.
    """
    if per_turf <= 0:
        raise ValueError("per_turf must be positive")
    return max(1, round(total / per_turf))


def _principal_axis(centred: np.ndarray) -> np.ndarray:
    cov = centred.T @ centred
    vals, vecs = np.linalg.eigh(cov)
    return vecs[:, int(np.argmax(vals))]


def _streets_cut(street_seq: np.ndarray) -> np.ndarray:
    """For each cut position c (0..n), how many streets have doors on both sides of it."""
    n = len(street_seq)
    codes, inverse = np.unique(street_seq, return_inverse=True)
    pos = np.arange(n)
    first = np.full(len(codes), n)
    last = np.full(len(codes), -1)
    np.minimum.at(first, inverse, pos)
    np.maximum.at(last, inverse, pos)
    diff = np.zeros(n + 2, dtype=np.int64)
    np.add.at(diff, first + 1, 1)
    np.add.at(diff, last + 1, -1)
    return np.cumsum(diff)[: n + 1]


def _cut_position(
    cum: np.ndarray, k1: int, k2: int, mean: float, band: float, streets: np.ndarray | None
) -> int:
    """Where to cut a sorted group: ``cum[c]`` is the weight of its first ``c`` doors.

    The exact cut puts ``k1 / (k1 + k2)`` of the weight first. With street names and a balance
    budget, the cut may move to any position keeping both halves within ``band`` of ``mean`` per
    turf, choosing the one that splits the fewest streets (then the nearest to exact).
    """
    m = len(cum) - 1
    total = cum[-1]
    target = int(np.clip(np.searchsorted(cum, total * k1 / (k1 + k2)), 1, m - 1))
    # The exact position is between two doors: take the side nearer the exact weight.
    if target > 1 and abs(cum[target - 1] - total * k1 / (k1 + k2)) < abs(
        cum[target] - total * k1 / (k1 + k2)
    ):
        target -= 1
    if streets is None or band <= 0:
        return target
    first_lo, first_hi = k1 * mean * (1 - band), k1 * mean * (1 + band)
    second_lo, second_hi = k2 * mean * (1 - band), k2 * mean * (1 + band)
    positions = np.arange(1, m)
    w_first = cum[1:m]
    ok = (
        (w_first >= first_lo)
        & (w_first <= first_hi)
        & (total - w_first >= second_lo)
        & (total - w_first <= second_hi)
    )
    if not ok.any():
        return target
    candidates = positions[ok]
    crossing = _streets_cut(streets)[candidates]
    score = crossing * (m + 1) + np.abs(candidates - target)
    return int(candidates[int(np.argmin(score))])


def split_doors(
    xy: np.ndarray,
    per_turf: float,
    streets: np.ndarray | None = None,
    tolerance: float = 0.15,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Label each door with its turf (0..k-1); labels follow a spatially coherent order.

    ``weights`` is each door's share of the measure being balanced (1 a door when None: doors;
    the door's households; or its estimated seconds of work). ``per_turf`` is in that measure.
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    labels = np.zeros(n, dtype=np.int64)
    if n == 0:
        return labels
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    k_total = min(n, turf_count(float(w.sum()), per_turf))
    mean = float(w.sum()) / k_total
    # Every group's measure-per-turf must stay within this band around the global mean; a cut
    # may move anywhere that keeps both halves inside it (exact halving always does), so the
    # final turfs stay within the band plus one door of rounding, whatever the depth.
    band = tolerance * 0.6 if streets is not None else 0.0
    street_arr = None if streets is None else np.asarray(streets)
    stack: list[tuple[np.ndarray, int]] = [(np.arange(n), k_total)]
    next_label = 0
    while stack:
        idx, k = stack.pop()
        if k == 1 or len(idx) == 1:
            labels[idx] = next_label
            next_label += 1
            continue
        k1 = k // 2
        pts = xy[idx]
        centred = pts - pts.mean(axis=0)
        proj = centred @ _principal_axis(centred)
        order = np.argsort(proj, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[idx][order])])
        cut = _cut_position(
            cum, k1, k - k1, mean, band, None if street_arr is None else street_arr[idx][order]
        )
        # A part never gets more turfs than doors (a tower block cannot be split).
        k1 = min(k1, cut)
        k2 = min(k - k1, len(idx) - cut)
        # Second half pushed first so that the first half is labelled first (neighbours close).
        stack.append((idx[order[cut:]], k2))
        stack.append((idx[order[:cut]], k1))
    return labels


def balance(labels: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Sizes of the turfs (in ``weights``, doors when None): min, max, mean, largest deviation."""
    sizes = (
        np.bincount(np.asarray(labels), weights=weights)
        if len(labels)
        else np.zeros(0, dtype=float)
    )
    if len(sizes) == 0:
        return {"turfs": 0, "min": 0, "max": 0, "mean": 0.0, "max_deviation": 0.0}
    mean = float(sizes.mean())
    return {
        "turfs": int(len(sizes)),
        "min": float(sizes.min()),
        "max": float(sizes.max()),
        "mean": mean,
        "max_deviation": float(np.abs(sizes - mean).max() / mean),
    }


# ---------------------------------------------------------------- shapes
def turf_shape(xy: np.ndarray) -> Polygon:
    """The turf's outline in metres: the doors' convex hull (a small disc when degenerate)."""
    hull = shapely.multipoints(np.asarray(xy, dtype=float)).convex_hull
    if hull.geom_type != "Polygon" or hull.area < 1.0:
        hull = hull.buffer(DEGENERATE_BUFFER_M, quad_segs=4)
    return hull


def compactness(shape: Polygon) -> float:
    """Polsby-Popper compactness 4πA/P² (1 for a disc, near 0 for a thin strip)."""
    if shape.length == 0:
        return 0.0
    return float(4 * math.pi * shape.area / shape.length**2)


def to_lonlat(shape: Polygon, proj: LocalProjection, decimals: int = 7) -> dict:
    """A metre-space polygon as a GeoJSON geometry in lon/lat (rounded)."""
    ring = np.round(proj.inverse(np.asarray(shape.exterior.coords)), decimals)
    return mapping(shapely.Polygon(ring))


# ---------------------------------------------------------------- whole plan
@dataclass
class TurfPlan:
    """One turf of a cut: its doors (indices into the input, in walking order) and metrics."""

    doors: np.ndarray
    walk_length_m: float
    input_order_length_m: float
    compactness: float
    geometry: dict
    households: float = 0.0


@dataclass
class CutPlan:
    """The result of cutting a set of doors."""

    turfs: list[TurfPlan]
    balance: dict[str, float]
    streets_split: int = 0
    extras: dict = field(default_factory=dict)


def cut_plan(
    lon: np.ndarray,
    lat: np.ndarray,
    per_turf: float,
    *,
    streets: np.ndarray | None = None,
    parity: np.ndarray | None = None,
    households: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    tolerance: float = 0.15,
) -> CutPlan:
    """Split doors into turfs and give each a walking order, length, compactness and outline.

    ``weights`` (one a door by default) is the measure balanced, ``per_turf`` its target.
    """
    xy, proj = project_local(lon, lat)
    labels = split_doors(xy, per_turf, streets, tolerance, weights)
    turfs: list[TurfPlan] = []
    order_all = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order_all], np.arange(labels.max() + 2 if len(labels) else 0))
    for t in range(len(bounds) - 1):
        members = order_all[bounds[t] : bounds[t + 1]]
        pts = xy[members]
        order = walk_order(
            pts,
            None if streets is None else np.asarray(streets)[members],
            None if parity is None else np.asarray(parity)[members],
        )
        shape = turf_shape(pts)
        turfs.append(
            TurfPlan(
                doors=members[order],
                walk_length_m=path_length(pts, order),
                input_order_length_m=path_length(pts),
                compactness=compactness(shape),
                geometry=to_lonlat(shape, proj),
                households=float(np.asarray(households)[members].sum())
                if households is not None
                else float(len(members)),
            )
        )
    split = 0
    if streets is not None and len(labels):
        pairs = np.unique(np.column_stack([np.asarray(streets), labels]), axis=0)
        split = int(len(pairs) - len(np.unique(pairs[:, 0])))
    return CutPlan(turfs=turfs, balance=balance(labels, weights), streets_split=split)
