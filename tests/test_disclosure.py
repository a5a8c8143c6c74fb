"""app.disclosure, the pure rule: no hidden count can be pinned down from what is published.

Each test solves what a reader could deduce (tests/lp_audit.py: linear programming over every
published count, the public bounds and the relations) instead of trusting the algorithm's own
certificates.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import disclosure
from app.disclosure import CAMPAIGN, Table, protect, protect_partition, protect_progress
from tests.lp_audit import Model, narrow, table_model

OUTCOMES = ("not_home", "talked", "refused", "moved", "no_access", "do_not_knock")
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def progress_model(doors, published, rounds, k):
    """The reader's model of an analyst's progress: one unknown per (area, round, outcome),
    bounded by the area's doors (public); visited = sum of outcomes; campaign = sum of the areas
    shown. ``published[area or CAMPAIGN][round]`` = {"visited": n | None, "outcomes": {o: ...}}.
    Returns the model and the hidden counts (expression, public bound)."""
    areas = sorted(a for a in doors if a in published)
    idx = {}
    for area in areas:
        for r in rounds:
            for o in OUTCOMES:
                idx[(area, r, o)] = len(idx)
    model = Model.of(len(idx), [doors[a] for a, _, _ in idx])
    hidden = {}
    total_doors = sum(doors[a] for a in areas)

    def check(key, expr, value, bound):
        if value is None:
            hidden[key] = (expr, bound)
        else:
            model.equal(expr, value)

    for r in rounds:
        for area in [*areas, CAMPAIGN]:
            who = areas if area == CAMPAIGN else [area]
            bound = total_doors if area == CAMPAIGN else doors[area]
            entry = published[area][r]
            check(
                (area, r, "visited"),
                {idx[(a, r, o)]: 1 for a in who for o in OUTCOMES},
                entry["visited"],
                bound,
            )
            for o in OUTCOMES:
                check((area, r, o), {idx[(a, r, o)]: 1 for a in who}, entry["outcomes"][o], bound)
        for area in areas:  # an area's visited doors are at most its doors (public)
            model.at_most({idx[(area, r, o)]: 1 for o in OUTCOMES}, doors[area])
    return model, hidden


def test_the_issue_example_leaked_by_subtraction_and_no_longer_does():
    # visited = 13, not_home = 11 shown, talked = 2 hidden: talked = 13 - 11 (old rule:
    # outcomes below k hidden, zeros and visited shown).
    counts = {"A": {1: {"not_home": 11, "talked": 2}}}
    k = 11
    old = {
        "visited": 13,
        "outcomes": {o: (n if n == 0 or n >= k else None) for o, n in _full(counts["A"][1])},
    }
    model, hidden = progress_model({"A": 100}, {"A": {1: old}, CAMPAIGN: {1: old}}, [1], k)
    leaks = narrow(model, hidden, k, zeros_shown=True)
    assert ("A", 1, "talked") in [key for key, *_ in leaks]

    pub = protect_progress({"A": 100}, counts, rounds=[1], outcomes=OUTCOMES, k=k)
    new = {"A": pub.areas["A"]["rounds"], CAMPAIGN: pub.campaign["rounds"]}
    assert new["A"][1]["outcomes"]["talked"] is None and new["A"][1]["visited"] == 13
    model, hidden = progress_model({"A": 100}, new, [1], k)
    assert narrow(model, hidden, k, zeros_shown=True) == []


def _full(by):
    return [(o, by.get(o, 0)) for o in OUTCOMES]


@st.composite
def progress_cases(draw):
    k = draw(st.integers(2, 8))
    n_areas = draw(st.integers(1, 5))
    rounds = list(range(1, draw(st.integers(1, 2)) + 1))
    doors, counts = {}, {}
    for i in range(n_areas):
        area = f"92002_{i:04d}" if i else "-"
        doors[area] = draw(st.integers(1, 40))
        counts[area] = {}
        for r in rounds:
            left = draw(st.integers(0, doors[area]))
            by = {}
            for o in OUTCOMES:
                by[o] = draw(st.integers(0, left))
                left -= by[o]
            counts[area][r] = by
    return k, doors, counts, rounds


@given(progress_cases())
@PROPERTY
def test_progress_hides_no_count_a_reader_can_narrow(case):
    k, doors, counts, rounds = case
    pub = protect_progress(doors, counts, rounds=rounds, outcomes=OUTCOMES, k=k)
    published = {a: e["rounds"] for a, e in pub.areas.items()}
    published[CAMPAIGN] = pub.campaign["rounds"]
    # areas with fewer than k doors are left out, of the campaign's counts too
    assert set(pub.areas) == {a for a, n in doors.items() if n >= k}
    assert pub.too_small == {a: n for a, n in doors.items() if n < k}
    # what is shown is true, zeros are shown, and every count from 1 to k - 1 is hidden
    for area in [*pub.areas, CAMPAIGN]:
        who = list(pub.areas) if area == CAMPAIGN else [area]
        for r in rounds:
            truth = {o: sum(counts[a][r][o] for a in who) for o in OUTCOMES}
            shown = published[area][r]
            for o, n in truth.items():
                assert shown["outcomes"][o] in (n, None)
                assert shown["outcomes"][o] is not None or n > 0
                assert shown["outcomes"][o] is None or not 0 < n < k
            visited = sum(truth.values())
            assert shown["visited"] in (visited, None)
            assert shown["visited"] is None or not 0 < visited < k
    assert pub.campaign["doors"] == sum(n for n in doors.values() if n >= k)
    model, hidden = progress_model(doors, published, rounds, k)
    assert narrow(model, hidden, k, zeros_shown=True) == []


@st.composite
def trees(draw):
    """A hierarchy (a total and its parts, the parts' own parts...), each count in at most two
    relations: a part of its parent and the total of its children."""
    k = draw(st.integers(2, 7))
    table = Table()
    counter = [0]

    def node(depth):
        key = f"n{counter[0]}"
        counter[0] += 1
        if depth == 0 or draw(st.booleans()):
            table.add(key, draw(st.integers(0, 30)))
            return key
        children = [node(depth - 1) for _ in range(draw(st.integers(1, 4)))]
        table.add(key, sum(table.values[table.index(c)] for c in children))
        table.relate(key, children)
        return key

    node(3)
    return k, table


@given(trees())
@PROPERTY
def test_any_hierarchy_hides_no_count_a_reader_can_narrow(case):
    k, table = case
    pub = protect(table, k)
    for i, value in enumerate(table.values):
        assert (i in pub.hidden) or value >= k  # zeros and small counts hidden
    model, hidden = table_model(table, pub)
    assert narrow(model, hidden, k, zeros_shown=False) == []


def test_two_way_table_with_margins_keeps_big_totals():
    # A realistic round: three districts, one with few visits. The campaign's main counts stay
    # shown; "moved" is small in every district, so its campaign total is hidden, and with it
    # one more campaign count (else it would be visited minus the others).
    doors = {"a": 300, "b": 250, "c": 200}
    counts = {
        "a": {1: {"not_home": 60, "talked": 40, "refused": 12, "moved": 3}},
        "b": {1: {"not_home": 45, "talked": 30, "refused": 14, "moved": 2}},
        "c": {1: {"not_home": 4, "talked": 2}},
    }
    pub = protect_progress(doors, counts, rounds=[1], outcomes=OUTCOMES, k=11)
    camp = pub.campaign["rounds"][1]
    assert camp["visited"] == 212 and camp["outcomes"]["not_home"] == 109
    assert camp["outcomes"]["talked"] == 72 and camp["outcomes"]["moved"] is None
    assert [o for o, n in camp["outcomes"].items() if n is None] == ["refused", "moved"]
    assert pub.areas["c"]["rounds"][1]["outcomes"]["not_home"] is None
    published = {a: e["rounds"] for a, e in pub.areas.items()}
    published[CAMPAIGN] = pub.campaign["rounds"]
    model, hidden = progress_model(doors, published, [1], 11)
    assert narrow(model, hidden, 11, zeros_shown=True) == []


def test_a_district_with_fewer_doors_than_k_is_left_out_of_every_count():
    # Every other district shows 0 visits: had "a" (5 doors) been counted in the campaign, its
    # hidden total (at least 1, since zeros are shown) would be pinned on those 5 doors.
    pub = protect_progress(
        {"a": 5, "b": 400},
        {"a": {1: {"do_not_knock": 1}}, "b": {1: {}}},
        rounds=[1],
        outcomes=OUTCOMES,
        k=11,
    )
    assert "a" not in pub.areas and pub.too_small == {"a": 5}
    assert pub.campaign["doors"] == 400
    assert pub.campaign["rounds"][1]["visited"] == 0
    assert pub.campaign["rounds"][1]["outcomes"]["do_not_knock"] == 0


def test_one_partition_hides_small_cells_and_zeros():
    assert protect_partition({"a": 0, "b": 3, "c": 11, "d": 40}, 11) == {
        "a": None,
        "b": None,
        "c": 11,
        "d": 40,
    }


def test_tables_the_algorithm_cannot_reason_about_are_refused():
    t = Table()
    for key in ("x", "y", "z", "s1", "s2", "s3"):
        t.add(key, 1)
    with pytest.raises(ValueError, match="sum of its parts"):
        t.relate("x", ["y", "z"])
    t = Table()
    for key, v in (("x", 1), ("t1", 1), ("t2", 1), ("t3", 1)):
        t.add(key, v)
    for total in ("t1", "t2", "t3"):
        t.relate(total, ["x"])
    with pytest.raises(ValueError, match="in 3 relations"):
        protect(t, 5)
    with pytest.raises(ValueError, match="added twice"):
        t.add("x", 2)


def test_public_counts_are_blanked_below_k_with_a_flag():
    district = {
        "counts": {"doors": 8, "households": 40, "supporters": None, "supporters_suppressed": True},
        "contributions": [
            {"factor": "door_count", "value": 8.0},
            {"factor": "households", "value": 40.0},
        ],
        "values": {"door_count": 8.0, "households": 40.0, "supporters": 0.0},
    }
    out = disclosure.apply_k(district, 11)
    assert out["counts"]["doors"] is None and out["counts"]["doors_suppressed"] is True
    assert out["counts"]["households"] == 40 and out["counts"]["households_suppressed"] is False
    assert out["counts"]["supporters_suppressed"] is True
    assert out["values"]["door_count"] is None and out["values"]["supporters"] is None
    assert out["contributions"][0] == {"factor": "door_count", "value": None, "suppressed": True}
    assert district["counts"]["doors"] == 8  # a copy
