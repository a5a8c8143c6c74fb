"""Turf splitting (pure): coverage, balance, convex non-interleaving cells, streets kept whole."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, Point

from app.geo.turf_split import (
    balance,
    compactness,
    cut_plan,
    project_local,
    split_doors,
    turf_count,
    turf_shape,
)


@given(
    n=st.integers(1, 3000),
    per=st.integers(5, 400),
    seed=st.integers(0, 2**16),
    with_streets=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_every_door_in_exactly_one_turf_and_balanced(n, per, seed, with_streets):
    rng = np.random.default_rng(seed)
    xy = rng.normal(0, 400, (n, 2)) * rng.uniform(0.2, 3, 2)
    streets = rng.integers(0, max(1, n // 30), n) if with_streets else None
    labels = split_doors(xy, per, streets)
    assert labels.shape == (n,)
    k = turf_count(n, per)
    assert sorted(np.unique(labels).tolist()) == list(range(k))
    sizes = np.bincount(labels)
    mean = n / k
    # ±15 % of the mean, plus one door of rounding (only matters for tiny turfs).
    assert np.all(np.abs(sizes - mean) <= 0.15 * mean + 1), (sizes.min(), sizes.max(), mean)
    if per >= 50 and n >= per:
        assert balance(labels)["max_deviation"] <= 0.15


def test_cells_do_not_interleave():
    # Convex cells: no turf's hull contains another turf's door.
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 2000, (2000, 2))
    labels = split_doors(xy, 100)
    hulls = [MultiPoint(xy[labels == t]).convex_hull for t in range(labels.max() + 1)]
    for t, hull in enumerate(hulls):
        others = xy[labels != t]
        inside = [hull.contains(Point(p)) for p in others[::7]]
        assert not any(inside), f"turf {t} hull holds another turf's door"


def test_street_aware_cut_splits_fewer_streets():
    # Doors along 40 horizontal streets: the street-aware cut keeps more of them whole.
    rng = np.random.default_rng(11)
    streets = np.repeat(np.arange(40), 50)
    x = rng.uniform(0, 400, 2000)
    y = streets * 25.0 + rng.normal(0, 2, 2000)
    xy = np.column_stack([x, y])

    def split_count(labels):
        pairs = np.unique(np.column_stack([streets, labels]), axis=0)
        return len(pairs) - 40

    aware = split_doors(xy, 150, streets)
    plain = split_doors(xy, 150)
    assert balance(aware)["max_deviation"] <= 0.15
    assert split_count(aware) < split_count(plain)


def test_compactness_of_square_and_strip():
    square = turf_shape(np.array([[0, 0], [100, 0], [100, 100], [0, 100]], dtype=float))
    strip = turf_shape(np.array([[0, 0], [1000, 0], [1000, 10], [0, 10]], dtype=float))
    assert abs(compactness(square) - np.pi / 4) < 1e-9
    assert compactness(strip) < 0.05


def test_single_door_gets_a_small_disc():
    shape = turf_shape(np.array([[3.0, 4.0]]))
    assert shape.geom_type == "Polygon" and 50 < shape.area < 100


def test_projection_round_trip_and_scale():
    lon = np.array([2.30, 2.31])
    lat = np.array([48.75, 48.75])
    xy, proj = project_local(lon, lat)
    assert abs((xy[1, 0] - xy[0, 0]) - 733.5) < 2  # 0.01° of longitude at 48.75°N ≈ 733 m
    assert np.allclose(proj.inverse(xy), np.column_stack([lon, lat]))


def test_cut_plan_walks_are_shorter_than_input_order():
    rng = np.random.default_rng(5)
    lon = 2.29 + rng.uniform(0, 0.02, 900)
    lat = 48.75 + rng.uniform(0, 0.015, 900)
    plan = cut_plan(lon, lat, 150)
    assert len(plan.turfs) == 6
    seen = np.concatenate([t.doors for t in plan.turfs])
    assert sorted(seen.tolist()) == list(range(900))
    for t in plan.turfs:
        assert t.walk_length_m < t.input_order_length_m
        assert 0 < t.compactness <= 1
        assert t.geometry["type"] == "Polygon"
