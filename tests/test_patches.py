"""quadrat.patches: pixel-identical to pyspacer's whole-image reflect pad, without the pad."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.errors import PointOutsideImageError
from quadrat.patches import PATCH_SIZE, crop_patches, reflect_indices


def naive_pyspacer(image: np.ndarray, rows, cols, size: int = PATCH_SIZE) -> np.ndarray:
    """pyspacer's recipe, literally: pad the whole image, then slice."""
    padded = np.pad(image, ((size, size), (size, size), (0, 0)), mode="reflect")
    out = []
    for row, col in zip(rows, cols, strict=True):
        upper = int(row + size - size / 2)
        left = int(col + size - size / 2)
        out.append(padded[upper : upper + size, left : left + size])
    return np.stack(out) if out else np.empty((0, size, size, image.shape[2]), image.dtype)


def _random_case(rng, height, width, n=40):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    corners_r = [0, 0, height - 1, height - 1]
    corners_c = [0, width - 1, 0, width - 1]
    edges_r = [0, height - 1, height // 2, height // 2, min(5, height - 1), max(height - 6, 0)]
    edges_c = [width // 2, width // 2, 0, width - 1, min(111, width - 1), max(width - 113, 0)]
    rows = np.r_[corners_r, edges_r, rng.integers(0, height, n)]
    cols = np.r_[corners_c, edges_c, rng.integers(0, width, n)]
    return image, rows, cols


def test_patch_size_is_224():
    assert PATCH_SIZE == 224


@pytest.mark.parametrize(
    ("height", "width"),
    [
        (300, 400),
        (1500, 2000),
        (225, 224),
        (224, 224),
        (223, 500),
        (500, 17),
        (1, 1),
        (2, 3),
        (5, 1),
    ],
)
def test_matches_pyspacer_reflect_pad(height, width):
    rng = np.random.default_rng(height * 1000 + width)
    image, rows, cols = _random_case(rng, height, width)
    got = crop_patches(image, rows, cols)
    assert got.shape == (len(rows), 224, 224, 3) and got.dtype == np.uint8
    assert np.array_equal(got, naive_pyspacer(image, rows, cols))


@pytest.mark.parametrize("size", [1, 2, 5, 31, 64, 223, 225])
@pytest.mark.parametrize(("height", "width"), [(3, 4), (40, 90), (301, 257)])
def test_odd_and_other_sizes(size, height, width):
    rng = np.random.default_rng(size + height)
    image, rows, cols = _random_case(rng, height, width, n=15)
    got = crop_patches(image, rows, cols, size=size)
    assert np.array_equal(got, naive_pyspacer(image, rows, cols, size=size))


def test_every_pixel_of_a_small_image():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    rows, cols = np.meshgrid(np.arange(9), np.arange(13), indexing="ij")
    got = crop_patches(image, rows.ravel(), cols.ravel(), size=40)
    assert np.array_equal(got, naive_pyspacer(image, rows.ravel(), cols.ravel(), size=40))


def test_non_contiguous_image_and_other_channel_counts():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (400, 300, 4), dtype=np.uint8)
    view = base[::2, ::-1, :3]  # strided, reversed view
    rows, cols = [0, 100, 199, 57], [0, 150, 299, 3]
    assert np.array_equal(crop_patches(view, rows, cols), naive_pyspacer(view, rows, cols))
    single = base[:, :, :1]
    assert crop_patches(single, rows, cols).shape == (4, 224, 224, 1)


def test_patch_centre_convention():
    """Rows [row-112, row+112): the point sits at patch index 112."""
    image = np.zeros((600, 600, 3), np.uint8)
    image[300, 250] = 255
    patch = crop_patches(image, [300], [250])[0]
    assert patch[112, 112].tolist() == [255, 255, 255]
    assert patch.sum() == 3 * 255


def test_reflect_indices_matches_numpy():
    for n in range(1, 12):
        for pad in (0, 1, n, 3 * n + 2, 224):
            expected = np.pad(np.arange(n), pad, mode="reflect")
            assert np.array_equal(reflect_indices(np.arange(-pad, n + pad), n), expected)


def test_accepts_pandas_and_integral_floats():
    pd = pytest.importorskip("pandas")
    image = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    rows = pd.Series([10, 150], dtype="int64")
    cols = np.array([20.0, 299.0])
    assert np.array_equal(
        crop_patches(image, rows, cols), naive_pyspacer(image, [10, 150], [20, 299])
    )


def test_empty_point_list():
    image = np.zeros((50, 50, 3), np.uint8)
    assert crop_patches(image, [], []).shape == (0, 224, 224, 3)


@pytest.mark.parametrize(("row", "col"), [(-1, 0), (0, -1), (300, 0), (0, 400), (10**9, 5)])
def test_points_outside_raise_naming_the_point(row, col):
    image = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(PointOutsideImageError) as err:
        crop_patches(image, [5, row], [5, col])
    message = str(err.value)
    assert f"row {row}, column {col}" in message
    assert "400x300" in message
    assert err.value.value == (row, col)


def test_non_integer_point_raises():
    image = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(PointOutsideImageError, match=r"12\.5"):
        crop_patches(image, [12.5], [3])
    with pytest.raises(PointOutsideImageError, match="not an integer"):
        crop_patches(image, [np.nan], [3])


def test_bad_shapes():
    with pytest.raises(ValueError):
        crop_patches(np.zeros((10, 10), np.uint8), [1], [1])
    with pytest.raises(ValueError):
        crop_patches(np.zeros((10, 10, 3), np.uint8), [1, 2], [1])


def test_large_mosaic_needs_no_padded_copy():
    """A 8000x8000 mosaic: only patch-sized buffers are allocated (no 8448^2 pad)."""
    tracemalloc = pytest.importorskip("tracemalloc")
    image = np.zeros((8000, 8000, 3), np.uint8)  # 192 MB
    rows = np.array([0, 4000, 7999, 100])
    cols = np.array([0, 4000, 7999, 7950])
    tracemalloc.start()
    patches = crop_patches(image, rows, cols)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert patches.shape == (4, 224, 224, 3)
    assert peak < 20_000_000  # a whole-image pad would be > 200 MB


def test_200_points_on_2000x1500():
    """The speed figure (> 2,000 patches/s) is benchmarks/parse_and_crop.py's, not a test's."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    rows = rng.integers(0, 1500, 200)
    cols = rng.integers(0, 2000, 200)
    patches = crop_patches(image, rows, cols)
    assert patches.shape == (200, 224, 224, 3) and patches.dtype == np.uint8
    np.testing.assert_array_equal(patches, naive_pyspacer(image, rows, cols))
