"""quadrat.points: CoralNet's point-generation geometry, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.errors import InputError
from quadrat.limits import Limits
from quadrat.points import AnnotationArea, PointSpec


def coralnet_cells(lo: int, hi: int, cells: int) -> list[tuple[int, int]]:
    """Cell bounds written out as CoralNet's calculate_points loop states them."""
    extent = hi - lo + 1
    return [
        ((i * extent) // cells + lo, ((i + 1) * extent) // cells + lo - 1) for i in range(cells)
    ]


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "method", "count"),
    [
        ("m_200", "simple", 200),
        ("t_5_5_2", "stratified", 50),
        ("u_10_10", "uniform", 100),
        ("i_80", "imported", 80),
        ("t_8_6_4", "stratified", 192),
        ("u_10_8", "uniform", 80),
    ],
)
def test_parse_and_str_round_trip(text, method, count):
    spec = PointSpec.parse(text)
    assert spec.method == method
    assert spec.count == count
    assert str(spec) == text
    assert PointSpec.parse(str(spec)) == spec


def test_parse_fields():
    assert PointSpec.parse("t_5_4_2") == PointSpec("stratified", rows=5, cols=4, per_cell=2)
    assert PointSpec.parse(" u_3_7 ") == PointSpec("uniform", rows=3, cols=7)
    assert PointSpec.parse("m_30").n == 30


@pytest.mark.parametrize(
    "text",
    [
        "",
        "m",
        "m_",
        "m_0",
        "m_-3",
        "m_2.5",
        "x_10",
        "M_200",
        "t_5_5",
        "u_1_2_3",
        "m_10_10",
        "t_0_5_1",
        "200",
        "m 200",
    ],
)
def test_parse_rejects_bad_text_naming_it(text):
    with pytest.raises(InputError) as err:
        PointSpec.parse(text)
    assert repr(text) in str(err.value)
    assert err.value.value == text


def test_constructor_validates():
    with pytest.raises(InputError):
        PointSpec("simple")
    with pytest.raises(InputError):
        PointSpec("stratified", rows=2, cols=2)
    with pytest.raises(InputError):
        PointSpec("grid", n=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- uniform grid


def test_uniform_matches_coralnet_examples():
    # From CoralNet's own export tests: 400 wide x 300 high, 1x2 grid -> (149, 99), (149, 299);
    # 1x1 grid -> (149, 199).
    pts = PointSpec.parse("u_1_2").generate(300, 400, seed=0)
    assert pts.tolist() == [[149, 99], [149, 299]]
    assert PointSpec.parse("u_1_1").generate(300, 400, seed=0).tolist() == [[149, 199]]


def test_uniform_grid_spacing_and_order():
    pts = PointSpec.parse("u_10_10").generate(1000, 1000, seed=1)
    assert pts.shape == (100, 2) and pts.dtype == np.int64
    rows = pts[:, 0].reshape(10, 10)
    cols = pts[:, 1].reshape(10, 10)
    assert (rows == rows[:, :1]).all() and (cols == cols[:1, :]).all()  # row-major
    assert rows[:, 0].tolist() == list(range(49, 1000, 100))
    assert np.diff(cols[0]).tolist() == [100] * 9


def test_uniform_uneven_cells_match_coralnet_formula():
    height, width = 241, 317
    pts = PointSpec.parse("u_7_9").generate(height, width, seed=0)
    expected = [
        ((rlo + rhi) // 2, (clo + chi) // 2)
        for rlo, rhi in coralnet_cells(0, height - 1, 7)
        for clo, chi in coralnet_cells(0, width - 1, 9)
    ]
    assert [tuple(p) for p in pts.tolist()] == expected


def test_uniform_ignores_seed():
    spec = PointSpec.parse("u_4_4")
    assert np.array_equal(spec.generate(100, 100, seed=1), spec.generate(100, 100, seed=2))


# ---------------------------------------------------------------- stratified


@pytest.mark.parametrize(
    ("height", "width", "text"),
    [(240, 320, "t_3_4_2"), (101, 103, "t_7_9_3"), (10, 10, "t_10_10_1")],
)
def test_stratified_each_cell_gets_per_cell_points(height, width, text):
    spec = PointSpec.parse(text)
    pts = spec.generate(height, width, seed=42)
    assert pts.shape == (spec.count, 2)
    k = spec.per_cell
    cells = [
        (rb, cb)
        for rb in coralnet_cells(0, height - 1, spec.rows)
        for cb in coralnet_cells(0, width - 1, spec.cols)
    ]
    for i, ((rlo, rhi), (clo, chi)) in enumerate(cells):
        chunk = pts[i * k : (i + 1) * k]  # cells row-major, per_cell consecutive points
        assert ((chunk[:, 0] >= rlo) & (chunk[:, 0] <= rhi)).all()
        assert ((chunk[:, 1] >= clo) & (chunk[:, 1] <= chi)).all()


def test_stratified_cells_cover_every_pixel_once():
    bounds = coralnet_cells(0, 100, 7)
    covered = [p for lo, hi in bounds for p in range(lo, hi + 1)]
    assert covered == list(range(101))
    sizes = {hi - lo + 1 for lo, hi in bounds}
    assert max(sizes) - min(sizes) <= 1


def test_stratified_reaches_cell_edges():
    """Inclusive bounds: with many draws, both edges of a cell occur."""
    many = Limits(points_per_image=2000)
    pts = PointSpec.parse("t_1_1_2000", limits=many).generate(5, 7, seed=3, limits=many)
    assert set(pts[:, 0]) == set(range(5)) and set(pts[:, 1]) == set(range(7))


def test_too_many_cells_for_area():
    with pytest.raises(InputError, match="do not fit"):
        PointSpec.parse("t_20_2_1").generate(10, 100, seed=0)


# ---------------------------------------------------------------- simple random


def test_simple_bounds_count_and_numbering_order():
    spec = PointSpec.parse("m_500")
    pts = spec.generate(1956, 1880, seed=7)
    assert pts.shape == (500, 2) and pts.dtype == np.int64
    assert pts[:, 0].min() >= 0 and pts[:, 0].max() < 1956
    assert pts[:, 1].min() >= 0 and pts[:, 1].max() < 1880
    cell = (pts[:, 0] * 5 // 1956) * 5 + (pts[:, 1] * 5 // 1880)
    assert (np.diff(cell) >= 0).all()  # numbered cell by cell over a 5x5 grid


def test_reproducible_and_seed_dependent():
    for text in ("m_200", "t_5_5_2"):
        spec = PointSpec.parse(text)
        a = spec.generate(1500, 2000, seed=123)
        b = spec.generate(1500, 2000, seed=123)
        c = spec.generate(1500, 2000, seed=124)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_generator_argument_is_accepted():
    rng = np.random.default_rng(5)
    pts = PointSpec.parse("m_10").generate(50, 60, seed=rng)
    assert pts.shape == (10, 2)


def test_tiny_image():
    assert PointSpec.parse("m_20").generate(1, 1, seed=0).tolist() == [[0, 0]] * 20
    assert PointSpec.parse("u_1_1").generate(1, 1, seed=0).tolist() == [[0, 0]]


def test_imported_is_not_generated():
    with pytest.raises(InputError, match="imported"):
        PointSpec.parse("i_80").generate(100, 100, seed=0)


def test_bad_image_size():
    with pytest.raises(InputError):
        PointSpec.parse("m_5").generate(0, 10, seed=0)


# ---------------------------------------------------------------- annotation area


def test_area_percentages_to_pixels_like_coralnet():
    area = AnnotationArea.from_percentages("5.7", "94.5", 10, 90, width=1000, height=500)
    assert area == AnnotationArea(min_x=56, max_x=944, min_y=49, max_y=449)
    full = AnnotationArea.from_percentages(0, 100, 0, 100, width=400, height=300)
    assert full == AnnotationArea.full(width=400, height=300) == AnnotationArea(0, 399, 0, 299)
    # 0.000-1.000 px maps to 0, 1.001-2.000 to 1: ceil(x) - 1, clamped at 0.
    assert AnnotationArea.from_percentages("0.1", "0.2", 0, 1, width=1000, height=100).min_x == 0
    assert AnnotationArea.from_percentages("0.11", "50", 0, 1, width=1000, height=100).min_x == 1


def test_area_parse_db_forms():
    assert AnnotationArea.parse("5.7;94.5;10;90", width=1000, height=500) == AnnotationArea(
        56, 944, 49, 449
    )
    assert AnnotationArea.parse("125,1880,80,1600", width=2000, height=2000) == AnnotationArea(
        125, 1880, 80, 1600
    )
    for bad in ("1;2;3", "a,b,c,d", "", "1,2,3,4,5", "0;150;0;100"):
        with pytest.raises(InputError):
            AnnotationArea.parse(bad, width=100, height=100)


@pytest.mark.parametrize("text", ["m_300", "t_4_3_2", "u_6_5"])
def test_points_stay_in_area(text):
    area = AnnotationArea(min_x=100, max_x=899, min_y=50, max_y=449)
    pts = PointSpec.parse(text).generate(500, 1000, seed=9, area=area)
    assert (pts[:, 0] >= 50).all() and (pts[:, 0] <= 449).all()
    assert (pts[:, 1] >= 100).all() and (pts[:, 1] <= 899).all()


def test_uniform_in_area_offsets_cells():
    area = AnnotationArea(min_x=100, max_x=299, min_y=0, max_y=99)
    pts = PointSpec.parse("u_1_2").generate(100, 400, seed=0, area=area)
    assert pts.tolist() == [[49, 149], [49, 249]]


def test_area_outside_image_rejected():
    with pytest.raises(InputError, match="not inside"):
        PointSpec.parse("m_5").generate(100, 100, seed=0, area=AnnotationArea(0, 100, 0, 50))
    with pytest.raises(InputError):
        PointSpec.parse("m_5").generate(100, 100, seed=0, area=AnnotationArea(50, 40, 0, 50))
