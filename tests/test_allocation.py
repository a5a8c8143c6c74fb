"""Tile -> district allocation: dasymetric by doors, area share without doors, mass preserved."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.services.reference.allocation import allocation_state, ensure_allocation
from tests.fixtures_ranking import E0, N0, load_hand_area, load_real_tiles_and_contours, tile_id


@pytest.fixture(scope="module")
async def hand(make_db):
    urls = make_db("alloc")
    engine = create_async_engine(urls.owner, pool_size=2)
    area = await load_hand_area(engine)
    yield engine, area, urls
    await engine.dispose()


@pytest.fixture(scope="module")
async def real(make_db):
    urls = make_db("allocreal")
    engine = create_async_engine(urls.owner, pool_size=2)
    tiles, bv = await load_real_tiles_and_contours(engine)
    yield engine, tiles, bv
    await engine.dispose()


async def _weights(engine) -> dict[tuple[str, str], tuple[float, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT district_code, tile_id, weight, method FROM district_alloc")
        )
        return {(d, t): (w, m) for d, t, w, m in rows}


async def test_district_inside_one_tile_gets_the_tiles_door_share(hand):
    """C lies wholly in T1, which has 10 doors, 4 of them in C: C gets 0.4 of T1 (area: 0.25)."""
    engine, area, _ = hand
    w = await _weights(engine)
    t1 = tile_id(E0, N0)
    assert w[(area.code("C"), t1)] == (pytest.approx(0.4), "doors")
    assert w[(area.code("A"), t1)] == (pytest.approx(0.6), "doors")
    t2 = tile_id(E0 + 200, N0)
    assert w[(area.code("A"), t2)][0] == pytest.approx(0.75)
    assert w[(area.code("B"), t2)][0] == pytest.approx(0.25)
    async with engine.connect() as conn:
        men = dict(
            (await conn.execute(text("SELECT district_code, men FROM district_profile"))).all()
        )
    assert men[area.code("C")] == pytest.approx(40)
    assert men[area.code("A")] == pytest.approx(90)


async def test_tile_without_doors_falls_back_to_area_share(hand):
    """T3 has no door; B and D each cover half of it."""
    engine, area, _ = hand
    w = await _weights(engine)
    t3 = tile_id(E0 + 400, N0)
    assert w[(area.code("B"), t3)] == (pytest.approx(0.5), "area")
    assert w[(area.code("D"), t3)] == (pytest.approx(0.5), "area")
    # T4 has doors: D gets 1 of its 2 (the other door lies outside every district).
    assert w[(area.code("D"), tile_id(E0 + 600, N0))] == (pytest.approx(0.5), "doors")


async def test_mass_is_preserved_on_the_hand_area(hand):
    """Sum over districts = sum over tiles of what lies inside districts (165 of 170)."""
    engine, area, _ = hand
    async with engine.connect() as conn:
        total = (
            await conn.execute(
                text("SELECT sum(men), sum(men_imputed), sum(doors) FROM district_profile")
            )
        ).one()
    assert total[0] == pytest.approx(165)
    assert total[1] == pytest.approx(5)  # T4 is imputed: D's 5 households come from it
    assert total[2] == 15  # 16 doors, one outside every district


async def test_changes_mark_the_allocation_stale_and_the_service_refreshes_it(hand):
    """A new door flips the stale flag (trigger); the service role refreshes lazily."""
    engine, area, urls = hand
    async with engine.begin() as conn:
        before = await allocation_state(conn)
        assert not before.stale
        await conn.execute(
            text(
                "INSERT INTO address (ban_id, lon, lat, source, source_file) SELECT 'extra', "
                "ST_X(p), ST_Y(p), 'synthetic', 'test' FROM (SELECT "
                "ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3035), 4326) p) s"
            ),
            {"x": E0 + 450, "y": N0 + 100},
        )
        assert (await allocation_state(conn)).stale
    app_engine = create_async_engine(urls.app, pool_size=1)
    try:
        async with app_engine.begin() as conn:
            after = await ensure_allocation(conn)
        assert not after.stale and after.version == before.version + 1
        w = await _weights(engine)
        # T3 now has a door (in B): B takes all of it by doors, D nothing.
        assert w[(area.code("B"), tile_id(E0 + 400, N0))] == (pytest.approx(1.0), "doors")
        assert (area.code("D"), tile_id(E0 + 400, N0)) not in w
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM address WHERE ban_id = 'extra'"))
            await conn.execute(text("SELECT porte_refresh_allocation()"))
        await app_engine.dispose()


async def test_real_sample_mass_preserved_and_close_to_tobler(real):
    """92-13: tiles fully inside the contours give exactly 1; totals match; tobler agrees.

    The sample has no doors in 92-13 (no BAN extract), so every tile uses the area share and the
    result should equal tobler's area_interpolate, except where the published contours overlap
    (about 80 m^2 in total): tobler counts an overlap twice, we divide it between the districts.
    """
    from tobler.area_weighted import area_interpolate

    engine, tiles, bv = real
    async with engine.connect() as conn:
        # Mass per tile: the shares of a tile add up to the part of it covered by the districts.
        rows = (
            await conn.execute(
                text(
                    "SELECT a.tile_id, sum(a.weight) AS w, ST_Area(ST_Intersection(t.geom, "
                    "u.g)) / ST_Area(t.geom) AS covered FROM district_alloc a JOIN insee_tile t "
                    "ON t.id = a.tile_id CROSS JOIN (SELECT ST_Union(geom_3035) g FROM district) u "
                    "GROUP BY a.tile_id, t.geom, u.g"
                )
            )
        ).all()
        assert len(rows) > 400
        for tid, w, covered in rows:
            assert w <= 1 + 1e-9
            assert w == pytest.approx(covered, abs=2e-3), tid
        ours = dict(
            (await conn.execute(text("SELECT district_code, men FROM district_profile"))).all()
        )
        total_alloc = sum(v or 0 for v in ours.values())
        expected = (
            await conn.execute(
                text(
                    "SELECT sum(t.men * ST_Area(ST_Intersection(t.geom, u.g)) / ST_Area(t.geom)) "
                    "FROM insee_tile t CROSS JOIN (SELECT ST_Union(geom_3035) g FROM district) u "
                    "WHERE ST_Intersects(t.geom, u.g)"
                )
            )
        ).scalar_one()
    assert total_alloc == pytest.approx(expected, rel=1e-4)

    target = bv.to_crs(3035)
    src = tiles[["men", "ind", "geometry"]]
    # allocate_total=False divides by the tile's area: the same rule as ours.
    same = area_interpolate(src, target, extensive_variables=["men"], allocate_total=False)
    same.index = target["codeBureauVote"]
    diffs = {code: abs((ours.get(code) or 0) - same.loc[code, "men"]) for code in same.index}
    worst = max(diffs.values())
    # No doors in 92-13, so area share everywhere: agreement to a fraction of a household.
    assert worst < 1.0, sorted(diffs.items(), key=lambda kv: -kv[1])[:5]
    # tobler's default (allocate_total=True) divides by the part of the tile that touches some
    # district: a tile half outside the contours gives ALL its households to the districts inside,
    # so its total equals the tiles' total (65,658) while ours keeps only the covered part.
    default = area_interpolate(src, target, extensive_variables=["men"])
    assert float(default["men"].sum()) == pytest.approx(float(tiles["men"].sum()), rel=1e-6)
    assert float(default["men"].sum()) > total_alloc + 1000


async def test_sample_with_synthetic_doors_preserves_mass_and_differs_from_tobler_where_doors_are(
    owner_engine,
):
    """On the loaded sample (92-13 tiles + contours + SYNTHETIC doors drawn inside the contours):

    - a tile with doors gives away exactly all of itself (its doors all lie in some district);
    - a tile without doors gives away the share of its area covered by districts;
    - against tobler (area only, allocate_total=False) the totals differ by the part of door
      tiles lying outside the contours (tobler drops it, the doors say nobody lives there), and
      districts differ where doors are unevenly spread inside a tile.
    """
    import geopandas as gpd
    import shapely
    from tobler.area_weighted import area_interpolate

    async with owner_engine.begin() as conn:
        await ensure_allocation(conn)
        per_tile = (
            await conn.execute(
                text(
                    "SELECT a.tile_id, sum(a.weight), bool_and(a.method = 'doors'), "
                    "min(a.tile_doors) FROM district_alloc a GROUP BY a.tile_id"
                )
            )
        ).all()
        tiles = (
            await conn.execute(text("SELECT id, men, ST_AsBinary(geom) FROM insee_tile"))
        ).all()
        dists = (
            await conn.execute(text("SELECT code, ST_AsBinary(geom_3035) FROM district"))
        ).all()
        ours = dict(
            (await conn.execute(text("SELECT district_code, men FROM district_profile"))).all()
        )
        doors = (await conn.execute(text("SELECT count(*) FROM door_district"))).scalar_one()
    assert doors > 1000
    door_tiles = [(t, w) for t, w, by_doors, n in per_tile if by_doors and n > 0]
    assert len(door_tiles) > 100
    for tid, w in door_tiles:
        assert w == pytest.approx(1.0), tid
    src = gpd.GeoDataFrame(
        {"men": [r[1] for r in tiles]},
        geometry=shapely.from_wkb([bytes(r[2]) for r in tiles]),
        crs=3035,
    )
    tgt = gpd.GeoDataFrame(
        {"code": [r[0] for r in dists]},
        geometry=shapely.from_wkb([bytes(r[1]) for r in dists]),
        crs=3035,
    )
    theirs = area_interpolate(src, tgt, extensive_variables=["men"], allocate_total=False)
    theirs.index = tgt["code"]
    ours_total = sum(v or 0 for v in ours.values())
    assert ours_total > float(theirs["men"].sum())  # door tiles half outside: kept whole by us
    diffs = sorted(
        ((abs((ours.get(c) or 0) - theirs.loc[c, "men"]), c) for c in theirs.index), reverse=True
    )
    assert diffs[0][0] > 1  # the door share does move households between districts
