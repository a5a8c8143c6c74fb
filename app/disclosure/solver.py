"""Cell suppression (``app.disclosure``'s rule, in its docstring): a ``Table`` of confidential
and public cells tied by linear relations, and ``protect``, which hides the cells below k and
then, for each, enough others that no reader can pin it down (a certificate per hidden cell).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

Key = Hashable
GROUND = -1  # the free node: cells in fewer than two relations are tied to it
_UNBOUNDED = 1 << 60
_INF = float("inf")


class Table:
    """Counts and the linear relations a reader knows between them."""

    def __init__(self) -> None:
        self._index: dict[Key, int] = {}
        self.keys: list[Key] = []
        self.values: list[int] = []
        self.public: list[bool] = []
        self.upper: list[int | None] = []
        self.weight: list[float] = []
        self.relations: list[tuple[int, tuple[int, ...]]] = []

    def add(
        self,
        key: Key,
        value: int,
        *,
        public: bool = False,
        upper: int | None = None,
        weight: float = 1.0,
    ) -> None:
        """A count. ``public``: known to every reader (never hidden, never moved).
        ``upper``: a public bound on the count (e.g. the district's doors). ``weight``: how
        much hiding this count costs the reader (campaign totals cost more than districts)."""
        if key in self._index:
            raise ValueError(f"cell {key!r} added twice")
        if value < 0 or (upper is not None and not 0 <= value <= upper):
            raise ValueError(f"cell {key!r}: {value} is not between 0 and its bound {upper}")
        self._index[key] = len(self.keys)
        self.keys.append(key)
        self.values.append(int(value))
        self.public.append(public)
        self.upper.append(upper)
        self.weight.append(weight)

    def relate(self, total: Key, parts: Iterable[Key]) -> None:
        """``total`` is the sum of ``parts`` (all of them cells of this table)."""
        t = self._index[total]
        ps = tuple(self._index[p] for p in parts)
        if sum(self.values[p] for p in ps) != self.values[t]:
            raise ValueError(f"cell {total!r} is not the sum of its parts")
        self.relations.append((t, ps))

    def index(self, key: Key) -> int:
        """Position of a cell."""
        return self._index[key]


@dataclass(frozen=True)
class Publication:
    """What may be shown: each cell's value, or None when hidden."""

    table: Table
    hidden: frozenset[int]

    def __getitem__(self, key: Key) -> int | None:
        i = self.table.index(key)
        return None if i in self.hidden else self.table.values[i]


def protect(table: Table, k: int, *, show_zeros: bool = False) -> Publication:
    """Primary then complementary suppression of ``table`` for threshold ``k`` (see module doc).

    ``show_zeros``: a zero describes nobody, so it may be shown (in cells whose public bound is
    at least k); a hidden count there is then known to be at least 1, and its k values are
    counted from 1."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return _Protector(table, k, show_zeros).run()


State = tuple[int, int]  # (relation node, contribution arriving there that must be cancelled)


class _Protector:
    """One run of the suppression over a table (see the module docstring)."""

    MAX_LENGTH = 12  # cells in a move besides the one protected
    WIDE = 24  # a node with more cells than this is searched through its sorted candidates
    FAN = 40  # candidates taken per direction and kind (hidden / published) at such a node
    MAX_POPS = 500  # states examined per search before giving up on it

    def __init__(self, table: Table, k: int, show_zeros: bool) -> None:
        self.t, self.k = table, k
        self.show_zeros = show_zeros
        n = len(table.values)
        self.val = table.values
        self.top = [_UNBOUNDED if u is None else u for u in table.upper]
        # fixed: public, or a zero shown (never hidden, so never moved)
        self.fixed = [
            table.public[c] or (self.val[c] == 0 and self.zero_shown(c)) for c in range(n)
        ]
        self.force_zeros()
        # where zeros are shown a hidden count is known not to be 0: its floor is 1
        self.low = [1 if self.zero_shown(c) else 0 for c in range(n)]
        ends: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for r, (total, parts) in enumerate(table.relations):
            for c, a in [(total, 1), *((p, -1) for p in parts)]:
                if not self.fixed[c]:
                    ends[c].append((r, a))
        # node -> cell -> (coefficient here, other node, coefficient there)
        self.adj: dict[int, dict[int, tuple[int, int, int]]] = {GROUND: {}}
        for c in range(n):
            if table.public[c]:
                continue
            if self.fixed[c]:
                ends[c] = [(GROUND, 0), (GROUND, 0)]
                continue
            if len(ends[c]) > 2:
                raise ValueError(
                    f"cell {table.keys[c]!r} is in {len(ends[c])} relations: a table must put "
                    "each confidential cell in at most two"
                )
            if len(ends[c]) == 2 and ends[c][0][0] == ends[c][1][0]:
                raise ValueError(f"cell {table.keys[c]!r} appears twice in one relation")
            while len(ends[c]) < 2:
                ends[c].append((GROUND, 0))
            (a, ca), (b, cb) = ends[c]
            if a == GROUND and b == GROUND:
                continue  # in no relation: moves on its own
            self.adj.setdefault(a, {})[c] = (ca, b, cb)
            self.adj.setdefault(b, {})[c] = (cb, a, ca)
        self.ends = ends
        self.hidden: set[int] = {c for c in range(n) if not self.fixed[c] and self.val[c] < k}
        scale = 1 + max(self.val, default=0)
        self.cost = [
            0.0 if c in self.hidden else table.weight[c] * (1.0 + self.val[c] / scale)
            for c in range(n)
        ]
        self.certified: set[int] = set()
        self.offset: dict[int, int] = {}  # residual shifts while adding up several moves
        self.tentative: set[int] = set()  # cells a plan would hide (cost nothing while planning)
        # wide nodes: their cells sorted by value, hidden and published apart
        self.sorted: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
        for node, cells in self.adj.items():
            if len(cells) > self.WIDE:
                hid = sorted((self.val[c], c) for c in cells if c in self.hidden)
                pub = sorted((self.val[c], c) for c in cells if c not in self.hidden)
                self.sorted[node] = (hid, pub)

    def force_zeros(self) -> None:
        """A shown zero total makes its parts zero, and parts all shown zero make their total
        zero: such counts are known whatever is hidden (and describe nobody), so show them."""
        val, fixed = self.val, self.fixed
        changed = True
        while changed:
            changed = False
            for total, parts in self.t.relations:
                if fixed[total] and val[total] == 0:
                    for p in parts:
                        if not fixed[p]:
                            fixed[p] = changed = True
                elif not fixed[total] and all(fixed[p] and val[p] == 0 for p in parts):
                    fixed[total] = changed = True

    # -- bounds
    def zero_shown(self, c: int) -> bool:
        """Zeros are shown where the table allows it, except in cells the public data bound
        below k (a district with 5 doors): there "hidden" would tell "not zero"."""
        return self.show_zeros and self.top[c] >= self.k

    def need(self, c: int) -> int:
        """Width a hidden cell's range must have: k - 1 (k values), or all its bounds allow."""
        return min(self.k - 1, self.top[c] - self.low[c])

    def room(self, c: int, direction: int) -> int:
        """How far cell c can go up (direction > 0) or down without leaving its bounds."""
        value = self.val[c] + self.offset.get(c, 0) if self.offset else self.val[c]
        return self.top[c] - value if direction > 0 else value - self.low[c]

    def hide(self, cells: Iterable[int]) -> list[int]:
        new = sorted(c for c in cells if c not in self.hidden)
        for c in new:
            self.hidden.add(c)
            self.cost[c] = 0.0
            for node, _ in self.ends[c]:
                if node in self.sorted:
                    hid, pub = self.sorted[node]
                    pub.remove((self.val[c], c))
                    bisect.insort(hid, (self.val[c], c))
        return new

    # -- the pass
    def run(self) -> Publication:
        work = [(self.val[c], c) for c in sorted(self.hidden)]
        heapq.heapify(work)
        while work:
            _, h = heapq.heappop(work)
            if h in self.certified:
                continue
            for c in self.certify(h):
                if c not in self.certified:
                    heapq.heappush(work, (self.val[c], c))
        return Publication(self.t, frozenset(self.hidden))

    def certify(self, h: int) -> list[int]:
        """Give h a move wide enough, hiding as little as possible; returns the cells newly
        hidden. In order: one move among hidden cells, several added up among hidden cells, the
        cheapest single move that hides more, several added up that hide more, and at last the
        whole connected part of the table."""
        (u, _), (v, _) = self.ends[h]
        if u == GROUND and v == GROUND:
            self.certified.add(h)  # in no relation: its bounds alone leave it need() wide
            return []
        need = self.need(h)
        for only_hidden in (True, False):
            best: tuple[float, int, dict[int, int], int] | None = None
            for tu, td in self.modes(h):
                found = self.search(h, 1, tu, td, only_hidden)
                if found is None:
                    continue
                delta, length = found
                up, down = self.span(delta)
                if up + down < need:
                    continue
                cost = sum(self.cost[c] for c in delta if c not in self.hidden)
                if best is None or (cost, length) < (best[0], best[1]):
                    best = (cost, length, delta, up + down)
            flow = None
            if best is None or best[0] > 0:
                flow = self.plan_flow(h, need, only_hidden)
            if flow is not None and (best is None or flow[0] < best[0]):
                new = self.hide(flow[1])
                self.certified.add(h)
                return new
            if best is not None:
                _, _, delta, width = best
                new = self.hide(delta)
                self.certified.update(c for c in delta if width >= self.need(c))
                return new
        return self.hide_component(h)

    def modes(self, h: int) -> list[tuple[int, int]]:
        """(room each cell needs upwards, room downwards) of the moves worth looking for."""
        need = self.need(h)
        up, down = self.room(h, 1), self.room(h, -1)
        a, b = min(down, need), min(up, need)
        out: list[tuple[int, int]] = []
        for tu, td in ((need, 0), (0, need), (need - a, a), (b, need - b)):
            if up >= tu and down >= td and (tu, td) not in out:
                out.append((tu, td))
        return out

    def plan_flow(self, h: int, need: int, only_hidden: bool) -> tuple[float, set[int]] | None:
        """Several moves added up (up, then down), as in a max flow: (cost, cells to hide).
        Each move is the widest of the cheapest, so that few are needed."""
        width = 0
        try:
            for direction in (1, -1):
                self.offset = {}
                while width < need:
                    found = self.search(h, direction, 1, 0, only_hidden)
                    if found is None:
                        break
                    delta, _ = found
                    forward, _ = self.span(delta)
                    if forward <= 0:
                        break
                    amount = min(forward, need - width)
                    self.tentative.update(delta)
                    for c, d in delta.items():
                        self.offset[c] = self.offset.get(c, 0) + d * amount
                    width += amount
            if width < need:
                return None
            cells = {c for c in self.tentative if c not in self.hidden}
            return sum(self.cost[c] for c in cells), cells
        finally:
            self.offset, self.tentative = {}, set()

    def search(
        self, h: int, direction: int, tu: int, td: int, only_hidden: bool = False
    ) -> tuple[dict[int, int], int] | None:
        """The cheapest cycle of alternating signs through h moving in ``direction`` (the
        widest among the cheapest, then the shortest): every cell of it with room >= tu the way
        it moves and >= td the other way (and hidden already, or about to be, when
        ``only_hidden``). Labels (cost, -width, length) are set in Dijkstra's order."""
        (u, cu), (v, cv) = self.ends[h]
        start = (u, cu * direction if u != GROUND else 0)
        target_s = -cv * direction if v != GROUND else 0
        x0 = self.val[h] + self.offset.get(h, 0)
        first = (self.top[h] - x0) if direction > 0 else x0
        Label = tuple[float, int, int]
        best: dict[State, Label] = {start: (0.0, -first, 0)}
        parent: dict[State, tuple[State, int, int]] = {}
        heap: list[tuple[float, int, int, int, State]] = [(0.0, -first, 0, 0, start)]
        pushed = pops = 0
        adj, wide, val, top, off = self.adj, self.sorted, self.val, self.top, self.offset
        low, hidden, tentative, cost_of = self.low, self.hidden, self.tentative, self.cost
        while heap and pops < self.MAX_POPS:
            cost, negw, length, _, state = heapq.heappop(heap)
            if (cost, negw, length) > best.get(state, (_INF, 0, 0)):
                continue
            pops += 1
            node, s = state
            if node == v and (node == GROUND or s == target_s) and state != start:
                return self.unwind(h, direction, state, parent), length
            if length >= self.MAX_LENGTH:
                continue
            cells = adj.get(node, {})
            if node in wide:
                moves: Iterable[tuple[int, int]] = self.wide_moves(node, s, tu, td, only_hidden)
            elif node == GROUND:
                moves = [(c, d) for c in cells for d in (1, -1)]
            else:
                moves = [(c, -s * a) for c, (a, _, _) in cells.items()]
            for c, d in moves:
                if c == h:
                    continue
                x = val[c] + off.get(c, 0) if off else val[c]
                if d > 0:
                    ahead, back = top[c] - x, x - low[c]
                else:
                    ahead, back = x - low[c], top[c] - x
                if ahead < tu or back < td:
                    continue
                if c in hidden or c in tentative:
                    nc = cost
                elif only_hidden:
                    continue
                else:
                    nc = cost + cost_of[c]
                _, other, a_other = cells[c]
                nxt = (other, a_other * d if other != GROUND else 0)
                label = (nc, max(negw, -ahead), length + 1)
                if label < best.get(nxt, (_INF, 0, 0)):
                    best[nxt] = label
                    parent[nxt] = (state, c, d)
                    pushed += 1
                    heapq.heappush(heap, (*label, pushed, nxt))
        return None

    def wide_moves(
        self, node: int, s: int, tu: int, td: int, only_hidden: bool
    ) -> list[tuple[int, int]]:
        """The next steps out of a node with many cells: per direction, the FAN cheapest
        admissible hidden ones and the FAN cheapest admissible published ones."""
        cells = self.adj[node]
        val, top, off, low = self.val, self.top, self.offset, self.low
        out: list[tuple[int, int]] = []
        hid, pub = self.sorted[node]
        for kind in (hid,) if only_hidden else (hid, pub):
            for d in (1, -1):
                # up needs room above >= tu and value >= td; down needs value >= tu
                taken = 0
                for i in range(bisect.bisect_left(kind, ((td if d > 0 else tu), -1)), len(kind)):
                    c = kind[i][1]
                    if node != GROUND and -s * cells[c][0] != d:
                        continue
                    x = val[c] + off.get(c, 0) if off else val[c]
                    room_up, room_down = top[c] - x, x - low[c]
                    if d < 0:
                        room_up, room_down = room_down, room_up
                    if room_up >= tu and room_down >= td:
                        out.append((c, d))
                        taken += 1
                        if taken >= self.FAN:
                            break
        return out

    def unwind(
        self, h: int, direction: int, state: State, parent: dict[State, tuple[State, int, int]]
    ) -> dict[int, int]:
        delta = {h: direction}
        while state in parent:
            state, c, d = parent[state]
            delta[c] = delta.get(c, 0) + d
        return {c: d for c, d in delta.items() if d}

    def span(self, delta: dict[int, int]) -> tuple[int, int]:
        """How far the move can go forward and back (0, 0 when it breaks a relation)."""
        balance: dict[int, int] = {}
        for c, d in delta.items():
            for node, a in self.ends[c]:
                if node != GROUND:
                    balance[node] = balance.get(node, 0) + a * d
        if any(balance.values()):
            return 0, 0
        up = down = _UNBOUNDED
        for c, d in delta.items():
            sign = 1 if d > 0 else -1
            up = min(up, self.room(c, sign) // abs(d))
            down = min(down, self.room(c, -sign) // abs(d))
        return up, down

    def hide_component(self, h: int) -> list[int]:
        """No move exists: hide every confidential cell connected to h."""
        seen: set[int] = set()
        queue = deque(node for node, _ in self.ends[h] if node != GROUND)
        cells = {h}
        while queue:
            node = queue.popleft()
            if node in seen:
                continue
            seen.add(node)
            for c, (_, other, _) in self.adj.get(node, {}).items():
                cells.add(c)
                if other != GROUND and other not in seen:
                    queue.append(other)
        new = self.hide(cells)
        self.certified.update(cells)
        return new
