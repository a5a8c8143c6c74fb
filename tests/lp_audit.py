"""What a reader can deduce from published counts: the range of each hidden count, by linear
programming (scipy's HiGHS) over everything published, the public data and the relations.

Used by the tests of app.disclosure: a hidden count is *protected* when the integers it may still
take, all published counts held fixed, are at least ``min(k, what the public data alone allow)``
(and not counting 0 when zeros are shown, since a reader then knows a hidden count is not 0).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass
class Model:
    """Unknowns ``x >= 0`` (with optional upper bounds), linear facts about them, and the
    expressions whose range is asked. An expression is {variable index: coefficient}."""

    n: int
    upper: list[float | None]
    eq: list[tuple[dict[int, float], float]]
    le: list[tuple[dict[int, float], float]]

    @classmethod
    def of(cls, n: int, upper: Sequence[float | None] | None = None) -> Model:
        return cls(n, list(upper) if upper is not None else [None] * n, [], [])

    def equal(self, expr: Mapping[int, float], value: float) -> None:
        self.eq.append((dict(expr), float(value)))

    def at_most(self, expr: Mapping[int, float], value: float) -> None:
        self.le.append((dict(expr), float(value)))

    def _matrix(self, rows: list[tuple[dict[int, float], float]]):
        if not rows:
            return None, None
        a = np.zeros((len(rows), self.n))
        for i, (expr, _) in enumerate(rows):
            for j, coef in expr.items():
                a[i, j] += coef
        return a, np.array([v for _, v in rows])

    def range(self, expr: Mapping[int, float]) -> tuple[int, float]:
        """Smallest and largest integer value the expression may take (largest: inf)."""
        used = {j for rows in (self.eq, self.le) for e, _ in rows for j in e}
        if all(j not in used and self.upper[j] is None and c > 0 for j, c in expr.items()):
            return 0, math.inf  # bound by nothing but >= 0: no need to solve
        c = np.zeros(self.n)
        for j, coef in expr.items():
            c[j] += coef
        a_eq, b_eq = self._matrix(self.eq)
        a_ub, b_ub = self._matrix(self.le)
        bounds = [(0, u) for u in self.upper]
        lo = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        hi = linprog(-c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        assert lo.status == 0, f"the published counts are inconsistent: {lo.message}"
        top = math.inf if hi.status == 3 else -hi.fun
        assert hi.status in (0, 3), hi.message
        return math.ceil(lo.fun - 1e-6), (math.floor(top + 1e-6) if top != math.inf else top)


def narrow(
    model: Model,
    hidden: Mapping[Hashable, tuple[dict[int, float], int | None]],
    k: int,
    *,
    zeros_shown: bool,
) -> list[tuple[Hashable, int, float, int]]:
    """Hidden counts a reader can narrow below what is allowed: (key, low, high, needed).

    ``hidden`` maps a key to (its expression, its public upper bound or None). Where zeros are
    shown (``zeros_shown``, in counts whose public bound is at least k), a hidden count is known
    not to be 0: the integers left are counted from 1. Elsewhere a hidden count must keep k
    values, or every value its public bound allows."""
    out = []
    for key, (expr, upper) in hidden.items():
        lo, hi = model.range(expr)
        if zeros_shown and (upper is None or upper >= k):
            left, needed = hi - max(lo, 1) + 1, k
        else:
            left, needed = hi - lo + 1, k if upper is None else min(k, upper + 1)
        if left < needed:
            out.append((key, lo, hi, needed))
    return out


def table_model(table, publication) -> tuple[Model, dict]:
    """The reader's model of an app.disclosure Table once published: one unknown per cell that
    is neither public nor published, each relation an equality."""
    free = [i for i in range(len(table.values)) if i in publication.hidden]
    pos = {c: j for j, c in enumerate(free)}
    model = Model.of(len(free), [table.upper[c] for c in free])
    for total, parts in table.relations:
        expr: dict[int, float] = {}
        rhs = 0.0
        for c, a in [(total, 1), *((p, -1) for p in parts)]:
            if c in pos:
                expr[pos[c]] = expr.get(pos[c], 0) + a
            else:
                rhs -= a * table.values[c]
        if expr:
            model.equal(expr, rhs)
        else:
            assert rhs == 0
    hidden = {table.keys[c]: ({pos[c]: 1.0}, table.upper[c]) for c in free}
    return model, hidden
