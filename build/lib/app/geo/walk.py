"""Walking order of a turf's doors: nearest neighbour, then 2-opt (pure numpy, no I/O).

A volunteer walks an open path (no need to come back to the start). The order minimises a cost
that is the straight-line distance plus two small penalties, so that doors are grouped the way
canvassers walk: a penalty for changing street (finish a street, both sides, before the next one)
and a smaller one for crossing to the other side of the same street (odd/even numbers), so the
route walks along one side and crosses only when that saves more than the penalty. The reported
walking length is the plain distance in metres along the chosen order, without the penalties.

Coordinates are metres in a local projection (see ``turf_split.project_local``).
"""

from __future__ import annotations

import numpy as np

STREET_CHANGE_PENALTY_M = 40.0
SIDE_CHANGE_PENALTY_M = 10.0
_MAX_ROUNDS = 500
_MOVES_PER_ROUND = 64


def distance_matrix(xy: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances (metres) between the rows of ``xy``."""
    x, y = xy[:, 0], xy[:, 1]
    return np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])


def path_length(xy: np.ndarray, order: np.ndarray | None = None) -> float:
    """Length in metres of the open path through ``xy`` in ``order`` (default: as given)."""
    pts = xy if order is None else xy[np.asarray(order)]
    if len(pts) < 2:
        return 0.0
    return float(np.sqrt(((pts[1:] - pts[:-1]) ** 2).sum(axis=1)).sum())


def cost_matrix(
    xy: np.ndarray, streets: np.ndarray | None = None, parity: np.ndarray | None = None
) -> np.ndarray:
    """Distance plus the street-change and side-change penalties (symmetric)."""
    cost = distance_matrix(xy)
    if streets is not None:
        streets = np.asarray(streets)
        other_street = streets[:, None] != streets[None, :]
        cost = cost + STREET_CHANGE_PENALTY_M * other_street
        if parity is not None:
            parity = np.asarray(parity)
            other_side = (parity[:, None] != parity[None, :]) & ~other_street
            cost = cost + SIDE_CHANGE_PENALTY_M * other_side
    return cost


def nearest_neighbour(cost: np.ndarray, start: int) -> np.ndarray:
    """Greedy open path from ``start``: always go to the cheapest unvisited door."""
    n = len(cost)
    order = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    cur = start
    for k in range(n):
        order[k] = cur
        seen[cur] = True
        if k == n - 1:
            break
        row = np.where(seen, np.inf, cost[cur])
        cur = int(np.argmin(row))
    return order


def two_opt(cost: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Improve an open path with 2-opt moves until none shortens it (best moves first).

    The open path is made a cycle with a dummy node at zero cost from every door, so moves that
    change the path's ends are found too. Each round applies every improving, non-overlapping
    move found in one vectorised pass over the move matrix.
    """
    n = len(order)
    if n < 4:
        return order
    m = n + 1
    full = np.zeros((m, m))
    full[:n, :n] = cost
    tour = np.concatenate([order, [n]])  # n is the dummy node
    upper = np.triu(np.ones((m, m)), k=2)
    upper[0, m - 1] = 0.0  # the two edges are adjacent on the cycle
    for _ in range(_MAX_ROUNDS):
        ext = np.append(tour, tour[0])
        a = full[np.ix_(ext, ext)]
        edge = a.diagonal(1)  # cost of edge (tour[i], tour[i+1])
        # Replacing edges (i, i+1) and (j, j+1) by (i, j) and (i+1, j+1) saves `gain`.
        gain = edge[:, None] + edge[None, :]
        gain -= a[:m, :m]
        gain -= a[1:, 1:]
        gain *= upper
        flat_gain = gain.ravel()
        cand = np.flatnonzero(flat_gain > 1e-9)
        if cand.size == 0:
            break
        if cand.size > _MOVES_PER_ROUND:
            top = np.argpartition(-flat_gain[cand], _MOVES_PER_ROUND)[:_MOVES_PER_ROUND]
            cand = cand[top]
        cand = cand[np.argsort(-flat_gain[cand])]
        used = np.zeros(m + 1, dtype=bool)
        for flat in cand.tolist():
            i, j = divmod(flat, m)
            # Moves on disjoint stretches of the tour do not interact: apply them all.
            if not used[i : j + 2].any():
                used[i : j + 2] = True
                tour[i + 1 : j + 1] = tour[i + 1 : j + 1][::-1]
    cut = int(np.flatnonzero(tour == n)[0])
    return np.concatenate([tour[cut + 1 :], tour[:cut]])


def walk_order(
    xy: np.ndarray,
    streets: np.ndarray | None = None,
    parity: np.ndarray | None = None,
) -> np.ndarray:
    """A short walking order (indices into ``xy``): nearest neighbour from an end, then 2-opt."""
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if n <= 2:
        return np.arange(n)
    cost = cost_matrix(xy, streets, parity)
    # Start at an extreme of the longest axis: the walk then sweeps across the turf.
    centred = xy - xy.mean(axis=0)
    axis = _principal_axis(centred)
    start = int(np.argmin(centred @ axis))
    return two_opt(cost, nearest_neighbour(cost, start))


def _principal_axis(centred: np.ndarray) -> np.ndarray:
    """Unit vector along which the points spread most."""
    cov = centred.T @ centred
    vals, vecs = np.linalg.eigh(cov)
    return vecs[:, int(np.argmax(vals))]
