"""No hidden count can be worked out from everything one analyst can read.

A property over random small campaigns, through the real database and the real HTTP app: turfs
over a few polling stations of the sample (and Bruz's doors, outside every station), random
visits over one or two rounds, supporters at some doors. Then an analyst reads every endpoint
that shows counts (progress, ranking, one district, the CSV export, the OGC priority zones, the
district vector tiles, the supporter aggregates). Each number read becomes a linear equation on
what the reader does not know (how many doors of each district had each sequence of outcomes,
how many supporters live in each district), with the public door counts; every hidden count's
range is then solved by linear programming (tests/lp_audit.py). It must keep k values, counted
from 1 where zeros are shown (docs/privacy.md). Published counts must be true.
"""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.factories import make_world
from tests.fixtures_browser import tile_of
from tests.fixtures_supporters import person
from tests.lp_audit import Model, narrow

OUTCOMES = ("not_home", "talked", "refused", "moved", "no_access", "do_not_knock")
NONE = None  # a door not visited in a round
_DISTRICTS: list[tuple[str, list[int], tuple[float, float]]] = []


async def _candidates(engine) -> list[tuple[str, list[int], tuple[float, float]]]:
    """Four polling stations of the sample, each with its first 30 doors and its centre, plus
    30 doors of Bruz (outside every station: the area '-')."""
    if not _DISTRICTS:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT dd.district_code AS code, (array_agg(dd.address_id "
                        "ORDER BY dd.address_id))[1:30] AS doors, "
                        "ST_X(ST_PointOnSurface(d.geom)) AS lon, "
                        "ST_Y(ST_PointOnSurface(d.geom)) AS lat "
                        "FROM door_district dd JOIN district d ON d.code = dd.district_code "
                        "GROUP BY dd.district_code, d.geom HAVING count(*) >= 30 "
                        "ORDER BY dd.district_code LIMIT 4"
                    )
                )
            ).all()
            bruz = (
                await conn.execute(
                    text(
                        "SELECT a.id FROM address a WHERE a.code_insee = '35047' AND NOT EXISTS "
                        "(SELECT 1 FROM door_district dd WHERE dd.address_id = a.id) "
                        "ORDER BY a.id LIMIT 30"
                    )
                )
            ).scalars()
            _DISTRICTS.extend((r.code, list(r.doors), (r.lon, r.lat)) for r in rows)
            _DISTRICTS.append(("-", list(bruz), (0.0, 0.0)))
    return _DISTRICTS


@st.composite
def campaigns(draw):
    """k, rounds, and per area (index into the candidates): doors in the turf, and per round
    each door's outcomes in time order (empty: not visited), supporters at its doors."""
    k = draw(st.sampled_from([2, 3, 5]))
    n_rounds = draw(st.integers(1, 2))
    picked = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True))
    areas = {}
    for i in picked:
        n_doors = draw(st.integers(1, 14))
        visits = []
        for _ in range(n_rounds):
            outcome = st.sampled_from(OUTCOMES)
            per_door = st.lists(outcome, max_size=2)
            visits.append(draw(st.lists(per_door, min_size=n_doors, max_size=n_doors)))
        supporters = draw(st.integers(0, 3)) if i < 4 else 0
        areas[i] = (n_doors, visits, supporters)
    return k, n_rounds, areas


async def _setup(client, engine, settings, case):
    k, n_rounds, areas = case
    cands = await _candidates(engine)
    world = await make_world(engine, settings, k=k)
    truth = {}  # area -> (doors, [ {door: latest outcome or None} per round ])
    start = datetime.now(UTC) - timedelta(days=2)
    async with engine.begin() as conn:
        rounds = []
        for number in range(1, n_rounds + 1):
            rounds.append(
                (
                    await conn.execute(
                        text(
                            "INSERT INTO canvass_round (campaign_id, number, started_at) "
                            "VALUES (:c, :n, :t) RETURNING id"
                        ),
                        {"c": world.campaign_id, "n": number, "t": start + timedelta(hours=number)},
                    )
                ).scalar_one()
            )
        for i, (n_doors, visits, _) in areas.items():
            code, doors, _ = cands[i]
            doors = doors[:n_doors]
            turf = (
                await conn.execute(
                    text(
                        "INSERT INTO turf (campaign_id, name, geom) VALUES (:c, :n, "
                        "ST_Multi(ST_Buffer(ST_Collect(ARRAY(SELECT geom FROM address "
                        "WHERE id = ANY(:d))), 0.0001))) RETURNING id"
                    ),
                    {"c": world.campaign_id, "n": f"T{i}", "d": doors},
                )
            ).scalar_one()
            for seq, door in enumerate(doors):
                await conn.execute(
                    text(
                        "INSERT INTO turf_door (campaign_id, turf_id, address_id, seq) "
                        "VALUES (:c, :t, :a, :s)"
                    ),
                    {"c": world.campaign_id, "t": turf, "a": door, "s": seq},
                )
            latest = []
            for r, per_door in enumerate(visits):
                last = {}
                for door, outcomes in zip(doors, per_door, strict=True):
                    for j, outcome in enumerate(outcomes):
                        at = start + timedelta(hours=r + 1, minutes=j + 1)
                        await conn.execute(
                            text(
                                "INSERT INTO visit (campaign_id, id, address_id, round_id, "
                                "outcome, visited_at) VALUES (:c, :i, :a, :r, :o, :t)"
                            ),
                            {
                                "c": world.campaign_id,
                                "i": uuid.uuid4(),
                                "a": door,
                                "r": rounds[r],
                                "o": outcome,
                                "t": at,
                            },
                        )
                    last[door] = outcomes[-1] if outcomes else NONE
                latest.append(last)
            truth[code] = (n_doors, latest)
    supporters = {}
    for i, (_, _, n) in areas.items():
        code, doors, _ = cands[i]
        for j in range(n):
            r = await client.post(
                world.url("/supporters"),
                headers=world.headers["admin"],
                json=person(900 + 10 * i + j, address="somewhere we cannot place"),
            )
            assert r.status_code == 201, r.text
            r = await client.patch(
                world.url(f"/supporters/{r.json()['id']}"),
                headers=world.headers["admin"],
                json={"address_id": doors[j % 3]},
            )
            assert r.status_code == 200, r.text
        if n:
            supporters[code] = n
    return world, truth, supporters


def _num(value: str):
    return None if value in ("", None) else int(float(value))


async def _read_everything(client, world, codes, cands):
    """Every count an analyst can read: {(endpoint, district or '*', count): value | None}."""
    h = world.headers["analyst"]
    seen = {}
    progress = await client.get(world.url("/progress"), headers=h)
    assert progress.status_code == 200, progress.text
    progress = progress.json()
    ranking = await client.get(world.url("/ranking"), headers=h)
    assert ranking.status_code == 200, ranking.text
    for d in ranking.json()["districts"]:
        for name in ("visited_doors", "supporters"):
            seen[("ranking", d["code"], name)] = d["counts"][name]
        # the score is made of published counts only: a hidden visited count damps nothing
        if d["counts"]["visited_doors"] is None:
            assert d["damping"] == 1.0 and d["values"]["coverage"] in (0.0, None), d
    for code in codes:
        if code == "-":
            continue
        one = await client.get(world.url(f"/districts/{code}"), headers=h)
        counts = one.json()["district"]["counts"]
        for name in ("visited_doors", "supporters"):
            seen[("district", code, name)] = counts[name]
    export = await client.get(world.url("/exports/priority-zones.csv"), headers=h)
    assert export.status_code == 200, export.text
    for row in csv.DictReader(io.StringIO(export.text)):
        for name in ("visited_doors", "supporters"):
            seen[("csv", row["code"], name)] = _num(row[name])
    items = await client.get(
        world.url("/ogc/collections/priority-zones/items"), params={"limit": 10000}, headers=h
    )
    assert items.status_code == 200, items.text
    for f in items.json()["features"]:
        for name in ("visited_doors", "supporters"):
            seen[("ogc", f["id"], name)] = f["properties"][name]
    for code, _, (lon, lat) in cands:
        if code not in codes or code == "-":
            continue
        x, y = tile_of(lon, lat, 13)
        tile = await client.get(world.url(f"/tiles/districts/13/{x}/{y}.mvt"), headers=h)
        assert tile.status_code == 200
        for f in mapbox_vector_tile.decode(tile.content).get("districts", {}).get("features", []):
            p = f["properties"]
            for name in ("visited_doors", "supporters"):
                seen[("mvt", p["code"], name)] = p.get(name)
    agg = await client.get(world.url("/supporters/aggregates"), headers=h)
    assert agg.status_code == 200, agg.text
    for cell in agg.json()["cells"]:
        seen[("aggregates", cell["key"], "supporters")] = cell["count"]
    return progress, seen


PROPERTY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@given(case=campaigns())
@PROPERTY
async def test_no_hidden_count_can_be_worked_out_from_what_an_analyst_reads(
    client, owner_engine, settings, case
):
    k, n_rounds, _ = case
    world, truth, supporters = await _setup(client, owner_engine, settings, case)
    cands = await _candidates(owner_engine)
    progress, seen = await _read_everything(client, world, set(truth), cands)

    # Unknowns: per area, doors by their sequence of outcomes over the rounds; per district,
    # supporters. Known: each area's doors (public); everything read.
    types = list(itertools.product((NONE, *OUTCOMES), repeat=n_rounds))
    var = {}
    for area in truth:
        for t in types:
            var[(area, t)] = len(var)
    districts = sorted({key[1] for key in seen if key[1] != "-"} | set(supporters))
    for d in districts:
        var[("supporters", d)] = len(var)
    model = Model.of(len(var))
    for area, (n_doors, _) in truth.items():
        model.equal({var[(area, t)]: 1 for t in types}, n_doors)

    def doors_expr(areas, r, outcome=None):
        """Doors of these areas visited in round r (with this latest outcome)."""
        return {
            var[(a, t)]: 1
            for a in areas
            for t in types
            if t[r] is not NONE and (outcome is None or t[r] == outcome)
        }

    def true_doors(areas, r, outcome=None):
        return sum(
            1
            for a in areas
            for o in truth[a][1][r].values()
            if o is not NONE and (outcome is None or o == outcome)
        )

    hidden = {}  # one entry per hidden quantity, however many endpoints hide it

    def fact(key, expr, real, value, bound, *, zeros_shown=True):
        if value is None:
            hidden.setdefault(tuple(sorted(expr.items())), (key, expr, bound, zeros_shown))
        else:
            assert value == real, (key, value, real)
            model.equal(expr, value)

    listed = [d["district_code"] or "-" for d in progress["districts"] if not d.get("too_small")]
    assert set(listed) == {a for a, (n, _) in truth.items() if n >= k}
    assert {d["district_code"] or "-" for d in progress["districts"]} == set(truth)
    camp_doors = sum(truth[a][0] for a in listed)
    assert progress["campaign"]["doors"] == camp_doors
    for r in range(n_rounds):
        rounds = {"campaign": (listed, progress["campaign"]["rounds"][str(r + 1)], camp_doors)}
        for d in progress["districts"]:
            if not d.get("too_small"):
                area = d["district_code"] or "-"
                rounds[area] = ([area], d["rounds"][str(r + 1)], d["doors"])
        for who, (areas, entry, bound) in rounds.items():
            fact(
                ("progress", who, r, "visited"),
                doors_expr(areas, r),
                true_doors(areas, r),
                entry["visited"],
                bound,
            )
            for o in OUTCOMES:
                fact(
                    ("progress", who, r, o),
                    doors_expr(areas, r, o),
                    true_doors(areas, r, o),
                    entry["outcomes"][o],
                    bound,
                )
    current = n_rounds - 1
    for (source, code, name), value in seen.items():
        if name == "visited_doors":
            if code in truth and truth[code][0] >= k:
                expr = doors_expr([code], current)
                fact((source, code, name), expr, true_doors([code], current), value, None)
            else:  # no door of it in the campaign's turfs (or fewer than k): never shown
                assert value is None, (source, code, value)
        else:
            expr = {var[("supporters", code)]: 1}
            real = supporters.get(code, 0)
            fact((source, code, name), expr, real, value, None, zeros_shown=False)

    for zeros_shown in (True, False):
        part = {
            key: (expr, bound)
            for key, expr, bound, shown in hidden.values()
            if shown is zeros_shown
        }
        assert narrow(model, part, k, zeros_shown=zeros_shown) == []
