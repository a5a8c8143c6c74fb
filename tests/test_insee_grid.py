"""INSEE grid ids <-> squares (pure), and the sample's squares against INSEE's own geometry."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
import shapely.affinity
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer

from app.geo.insee import Tile, TileIdError, parse_tile_id, square, tile_at, tile_id
from app.services.reference.imports.sample import TILES_GPKG


def test_tile_id_gives_the_four_corners():
    t = parse_tile_id("CRS3035RES200mN2875800E3756000")
    assert t == Tile(east=3756000, north=2875800, size=200)
    assert t.corners() == [
        (3756000, 2875800),
        (3756200, 2875800),
        (3756200, 2876000),
        (3756000, 2876000),
    ]
    assert t.bounds == (3756000, 2875800, 3756200, 2876000)
    assert square(t.id).area == 40000


def test_other_vintages_and_resolutions():
    assert parse_tile_id("crs3035res200mN2029800E4252400").id == "CRS3035RES200mN2029800E4252400"
    assert parse_tile_id("CRS3035RES1000mN2875000E3755000").size == 1000
    assert parse_tile_id("CRS3035RES1kmN2875000E3755000").size == 1000


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "CRS3035RES200mN2875800",
        "CRS2154RES200mN2875800E3756000",
        "N2875800E3756000",
        "CRS3035RES200mN2875850E3756000",
        "CRS3035RES0mN0E0",
        "CRS3035RES200mN-200E0",
    ],
)
def test_ids_that_do_not_parse_say_why(bad, english):
    with pytest.raises(TileIdError, match="grid"):
        parse_tile_id(bad)


corner = st.integers(min_value=0, max_value=40_000).map(lambda k: k * 200)


@given(east=corner, north=corner)
def test_id_square_id_round_trip(east, north):
    ident = tile_id(east, north)
    t = parse_tile_id(ident)
    assert (t.east, t.north, t.size) == (east, north, 200)
    assert t.id == ident
    x0, y0, x1, y1 = t.bounds
    assert (x1 - x0, y1 - y0) == (200, 200)


@given(
    east=corner,
    north=corner,
    dx=st.floats(min_value=0, max_value=199.999, allow_nan=False),
    dy=st.floats(min_value=0, max_value=199.999, allow_nan=False),
)
def test_every_point_of_a_square_maps_back_to_its_id(east, north, dx, dy):
    t = tile_at(east + dx, north + dy)
    assert t.id == tile_id(east, north)
    assert t.contains(east + dx, north + dy)
    assert not t.contains(east + 200, north) and not t.contains(east, north + 200)


@given(x=st.floats(0, 1e7), y=st.floats(0, 1e7))
def test_tile_at_contains_its_point(x, y):
    t = tile_at(x, y)
    assert t.contains(x, y)
    assert parse_tile_id(t.id) == t


def test_sample_squares_equal_insee_geometry():
    """The 504 squares derived from the ids coincide with INSEE's polygons (EPSG:2154)."""
    df = pyogrio.read_dataframe(TILES_GPKG)
    assert len(df) == 504
    assert df.crs.to_epsg() == 2154
    to_2154 = Transformer.from_crs(3035, 2154, always_xy=True)
    ours = []
    for ident in df["idcar_200m"]:
        xs, ys = zip(*parse_tile_id(ident).corners(), strict=True)
        ours.append(shapely.Polygon(zip(*to_2154.transform(xs, ys), strict=True)))
    theirs = np.asarray(df.geometry.values, dtype=object)
    diff = shapely.area(shapely.symmetric_difference(np.array(ours, dtype=object), theirs))
    assert diff.max() < 1e-3, f"largest difference {diff.max()} m²"
    # and a wrong square (shifted by one tile) would be caught
    shifted = shapely.affinity.translate(ours[0], 200, 0)
    assert shapely.area(shapely.symmetric_difference(shifted, theirs[0])) > 1000
