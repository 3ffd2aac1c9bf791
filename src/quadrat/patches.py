"""Point-centred patches, pixel-identical to pyspacer's, without padding the whole image.

pyspacer reflect-pads the whole image by ``size`` on every side (numpy ``mode='reflect'``)
and cuts ``padded[upper:upper+size, left:left+size]`` with
``upper = int(row + size - size/2)``. In original coordinates that is rows
``[row - ceil(size/2), row - ceil(size/2) + size)`` (``[row-112, row+112)`` for 224),
with out-of-image indices mirrored as numpy's reflect does (period ``2*(n-1)``, which also
covers pads larger than the image). We slice interior patches straight out of the image
(a strided view, no copy of the image) and gather only border patches through reflected
index arrays, so an 8000x8000 mosaic costs no extra image-sized buffer.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike

from quadrat.errors import InputError, PointOutsideImageError

#: Patch side in pixels (pyspacer's EfficientNet input size).
PATCH_SIZE = 224


def reflect_indices(index: np.ndarray, n: int) -> np.ndarray:
    """Map any integer indices onto ``[0, n)`` exactly as ``np.pad(..., mode='reflect')`` does."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    m = np.mod(index, period)
    return np.where(m >= n, period - m, m)


def _as_int_coords(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InputError(
            f"{name} must be one-dimensional, got shape {arr.shape}", value=arr.shape, param=name
        )
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise PointOutsideImageError(f"{name} must be integers, got booleans", value=arr[:3])
    try:
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PointOutsideImageError(
            f"{name} must be integers, got {arr.dtype}", value=arr[:3]
        ) from exc
    bad = ~np.isfinite(as_float) | (as_float != np.floor(as_float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PointOutsideImageError(
            f"point {i}: {name[:-1]} {arr[i]!r} is not an integer", value=arr[i]
        )
    return as_float.astype(np.int64)


def check_points_inside(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> None:
    """PointOutsideImageError naming the first point outside a ``width`` x ``height`` image.

    The one such check for cropping (CPU and GPU runners); callers add the image's name.
    """
    if rows.shape != cols.shape:
        raise InputError(
            f"rows and cols differ in length: {rows.shape[0]} vs {cols.shape[0]}",
            value=(rows.shape[0], cols.shape[0]),
        )
    outside = (rows < 0) | (rows >= height) | (cols < 0) | (cols >= width)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        r, c = int(rows[i]), int(cols[i])
        more = int(outside.sum()) - 1
        extra = f" (and {more} more)" if more else ""
        raise PointOutsideImageError(
            f"point (row {r}, column {c}) lies outside the {width}x{height} image "
            f"(rows 0-{height - 1}, columns 0-{width - 1}){extra}",
            value=(r, c),
        )


def crop_patches(
    image: np.ndarray, rows: ArrayLike, cols: ArrayLike, size: int = PATCH_SIZE
) -> np.ndarray:
    """Cut one ``size`` x ``size`` patch per point: (N, size, size, C) uint8, pyspacer's pixels.

    ``rows``/``cols`` are integer pixel positions on the stored image, inside it; any other
    value raises PointOutsideImageError naming the point (the caller adds the file name).
    """
    if image.ndim != 3:
        raise InputError(
            f"image must be (H, W, C), got shape {image.shape}", value=image.shape, param="image"
        )
    if size < 1:
        raise InputError(f"size must be positive, got {size}", value=size, param="size")
    height, width, channels = image.shape
    r = _as_int_coords(rows, "rows")
    c = _as_int_coords(cols, "cols")
    check_points_inside(r, c, height, width)

    n = r.shape[0]
    out = np.empty((n, size, size, channels), dtype=image.dtype)
    if n == 0:
        return out

    # int(row + size - size/2) - size == row - ceil(size/2) for integer rows.
    half = -(-size // 2)
    top = r - half
    left = c - half
    interior = (top >= 0) & (top + size <= height) & (left >= 0) & (left + size <= width)

    idx = np.flatnonzero(interior)
    if idx.size:
        s0, s1, s2 = image.strides
        windows = as_strided(
            image,
            shape=(height - size + 1, width - size + 1, size, size, channels),
            strides=(s0, s1, s0, s1, s2),
            writeable=False,
        )
        out[idx] = windows[top[idx], left[idx]]

    idx = np.flatnonzero(~interior)
    if idx.size:
        offsets = np.arange(size, dtype=np.int64)
        row_index = reflect_indices(top[idx, None] + offsets, height)  # (B, size)
        col_index = reflect_indices(left[idx, None] + offsets, width)  # (B, size)
        for k, i in enumerate(idx.tolist()):
            _gather_border(image, row_index[k], col_index[k], out[i])
    return out


def _runs(index: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split reflected indices into runs of step +1/-1: (out_start, out_stop, src_start, step)."""
    n = index.shape[0]
    if n == 1:
        return [(0, 1, int(index[0]), 1)]
    steps = np.diff(index)
    runs = []
    start = 0
    while start < n:
        if start == n - 1:
            runs.append((start, n, int(index[start]), 1))
            break
        step = int(steps[start])
        if step not in (1, -1):
            runs.append((start, start + 1, int(index[start]), 1))
            start += 1
            continue
        stop = start + 1
        while stop < n - 1 and steps[stop] == step:
            stop += 1
        runs.append((start, stop + 1, int(index[start]), step))
        start = stop + 1
    return runs


def _gather_border(
    image: np.ndarray, row_index: np.ndarray, col_index: np.ndarray, out: np.ndarray
) -> None:
    """Fill one patch from reflected indices: rows by ``take`` (contiguous rows), columns by
    slicing the few monotone runs a reflection produces (element-wise fancy indexing of
    3-byte pixels is ~10x slower)."""
    c0 = int(col_index.min())
    c1 = int(col_index.max()) + 1
    strip = image[:, c0:c1]
    local = col_index - c0
    if c1 - c0 == local.shape[0] and local[0] == 0 and local[-1] == c1 - c0 - 1:
        np.take(strip, row_index, axis=0, out=out)  # columns need no reflection
        return
    rows = strip.take(row_index, axis=0)  # (size, c1 - c0, C)
    for a, b, src, step in _runs(local):
        stop = src + step * (b - a)
        out[:, a:b] = rows[:, src : (stop if stop >= 0 else None) : step]
