"""Walking order (pure): a permutation, never longer than nearest neighbour, streets grouped."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.geo.walk import cost_matrix, nearest_neighbour, path_length, two_opt, walk_order

coords = arrays(
    np.float64,
    st.tuples(st.integers(1, 60), st.just(2)),
    elements=st.floats(-500, 500, allow_nan=False, allow_infinity=False),
)


@given(coords)
@settings(max_examples=60, deadline=None)
def test_walk_order_is_a_permutation_and_no_longer_than_nearest_neighbour(xy):
    order = walk_order(xy)
    assert sorted(order.tolist()) == list(range(len(xy)))
    if len(xy) > 2:
        cost = cost_matrix(xy)
        nn = nearest_neighbour(cost, int(order[0]))
        improved = two_opt(cost, nn.copy())
        assert path_length(xy, improved) <= path_length(xy, nn) + 1e-6


def test_points_on_a_line_are_walked_end_to_end():
    rng = np.random.default_rng(3)
    x = rng.permutation(np.arange(50) * 10.0)
    xy = np.column_stack([x, np.zeros(50)])
    order = walk_order(xy)
    assert abs(path_length(xy, order) - 490.0) < 1e-6


def test_two_opt_removes_a_crossing():
    # A zig-zag that crosses itself: 2-opt must untangle it to the square's perimeter path.
    xy = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=float)
    cost = cost_matrix(xy)
    improved = two_opt(cost, np.array([0, 1, 2, 3]))
    assert path_length(xy, improved) == 30.0


def test_street_penalty_finishes_a_street_before_the_next():
    # Two parallel streets 30 m apart, doors every 10 m on each: with the penalty the walk does
    # one street then the other (one street change), never zig-zags between them.
    x = np.arange(20) * 10.0
    xy = np.vstack([np.column_stack([x, np.zeros(20)]), np.column_stack([x, np.full(20, 30.0)])])
    streets = np.array([0] * 20 + [1] * 20)
    order = walk_order(xy, streets)
    changes = int((np.diff(streets[order]) != 0).sum())
    assert changes == 1


def test_side_penalty_walks_one_side_then_crosses():
    # Both sides of one street, 12 m apart: odd side then even side (one or two crossings),
    # rather than crossing at every door.
    x = np.arange(15) * 8.0
    xy = np.vstack(
        [np.column_stack([x, np.zeros(15)]), np.column_stack([x + 4, np.full(15, 12.0)])]
    )
    streets = np.zeros(30, dtype=int)
    parity = np.array([1] * 15 + [0] * 15)
    order = walk_order(xy, streets, parity)
    crossings = int((np.diff(parity[order]) != 0).sum())
    assert crossings <= 2
