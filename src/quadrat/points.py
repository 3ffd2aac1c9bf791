"""Annotation-point generation with CoralNet's geometry.

CoralNet (``project/images/utils.py: calculate_points``, ``images/model_utils.py: PointGen``,
``annotations/model_utils.py: AnnotationArea``) works on an *annotation area* given in
inclusive, 0-based pixel bounds ``min_x..max_x`` (columns) and ``min_y..max_y`` (rows):

- simple random ``m_N``: N points drawn uniformly (inclusive bounds) in the area, then
  numbered cell by cell over an imposed 5x5 grid so consecutive points are close;
- stratified random ``t_R_C_K``: the area is cut into R x C cells whose bounds are
  ``min + (i * extent) // R`` .. ``min + ((i + 1) * extent) // R - 1`` (every pixel in exactly
  one cell, sizes within one pixel); K uniform points per cell, cells row-major;
- uniform grid ``u_R_C``: the same cells, one point at each cell's integer midpoint
  ``(lo + hi) // 2``, row-major;
- imported ``i_N``: points came from a file, nothing to generate.

A percentage area maps to pixels as ``max(ceil(pct / 100 * dim) - 1, 0)`` per bound.
We reproduce the geometry and the numbering; the random draws use numpy's generator
(seeded and reproducible), so they are not CoralNet's exact numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from quadrat.errors import InputError
from quadrat.limits import Limits, current

Method = Literal["simple", "stratified", "uniform", "imported"]

_CODES: dict[str, Method] = {"m": "simple", "t": "stratified", "u": "uniform", "i": "imported"}
_LETTERS = {v: k for k, v in _CODES.items()}
_ARITY = {"simple": 1, "stratified": 3, "uniform": 2, "imported": 1}
_SPEC_RE = re.compile(r"^([mtui])((?:_\d+)+)$")

#: CoralNet numbers simple-random points through an imposed 5x5 grid of cells.
_NUMBERING_CELLS = 5


@dataclass(frozen=True)
class AnnotationArea:
    """CoralNet's annotation area: inclusive 0-based pixel bounds (x = column, y = row)."""

    min_x: int
    max_x: int
    min_y: int
    max_y: int

    @classmethod
    def from_percentages(
        cls,
        min_x: float | str,
        max_x: float | str,
        min_y: float | str,
        max_y: float | str,
        *,
        width: int,
        height: int,
    ) -> AnnotationArea:
        """Convert percentages of the width/height to pixels exactly as CoralNet does."""

        def to_px(pct: float | str, dim: int) -> int:
            frac = Fraction(str(pct))
            if not 0 <= frac <= 100:
                raise InputError(f"annotation area percentage must be 0-100, got {pct}", value=pct)
            return max(math.ceil(frac / 100 * dim) - 1, 0)

        return cls(
            to_px(min_x, width), to_px(max_x, width), to_px(min_y, height), to_px(max_y, height)
        )

    @classmethod
    def parse(cls, text: str, *, width: int, height: int) -> AnnotationArea:
        """CoralNet's stored form: ``'5.7;94.5;10;90'`` (percent) or ``'125,1880,80,1600'`` (px)."""
        text = text.strip()
        try:
            if ";" in text:
                parts = text.split(";")
                if len(parts) != 4:
                    raise ValueError
                return cls.from_percentages(*parts, width=width, height=height)
            parts = text.split(",")
            if len(parts) != 4:
                raise ValueError
            return cls(*(int(p) for p in parts))
        except (ValueError, ArithmeticError) as exc:
            raise InputError(
                "annotation area must be 'min_x;max_x;min_y;max_y' in percent or "
                f"'min_x,max_x,min_y,max_y' in pixels, got {text!r}",
                value=text,
            ) from exc

    @classmethod
    def check_text(cls, text: str, *, param: str | None = None) -> str:
        """``text`` (stripped) when it is an area in CoralNet's stored form whose bounds are in
        order; percent bounds 0-100. Pixel bounds are checked against each image when points
        are generated (images differ in size).

        >>> AnnotationArea.check_text(" 5;95;10;90 ")
        '5;95;10;90'
        """
        text = str(text).strip()
        probe = 1_000_000  # any size: the percent form's range, the order of the bounds
        try:
            area = cls.parse(text, width=probe, height=probe)
        except InputError as exc:
            raise InputError(exc.message, value=text, param=param) from exc
        if area.min_x > area.max_x or area.min_y > area.max_y or min(area.min_x, area.min_y) < 0:
            raise InputError(
                f"annotation area {text!r} must give min_x <= max_x and min_y <= max_y, "
                "all at least 0",
                value=text,
                param=param,
            )
        return text

    @classmethod
    def full(cls, *, width: int, height: int) -> AnnotationArea:
        return cls(0, width - 1, 0, height - 1)

    def check(self, *, width: int, height: int) -> None:
        """Raise InputError unless the area is non-empty and inside a width x height image."""
        if not (0 <= self.min_x <= self.max_x < width and 0 <= self.min_y <= self.max_y < height):
            raise InputError(
                f"annotation area x {self.min_x}-{self.max_x}, y {self.min_y}-{self.max_y} "
                f"is empty or not inside the {width}x{height} image",
                value=self,
            )

    @property
    def width(self) -> int:
        return self.max_x - self.min_x + 1

    @property
    def height(self) -> int:
        return self.max_y - self.min_y + 1


def _cell_bounds(lo: int, extent: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive bounds of ``cells`` near-equal cells over ``extent`` pixels from ``lo``."""
    i = np.arange(cells, dtype=np.int64)
    start = (i * extent) // cells + lo
    stop = ((i + 1) * extent) // cells + lo - 1
    return start, stop


@dataclass(frozen=True)
class PointSpec:
    """A CoralNet point-generation method: ``m_200``, ``t_5_5_2``, ``u_10_10`` or ``i_80``.

    ``n`` is the point count for simple/imported; ``rows``/``cols`` the cell grid and
    ``per_cell`` the points per cell for stratified/uniform.
    """

    method: Method
    n: int | None = None
    rows: int | None = None
    cols: int | None = None
    per_cell: int | None = None

    def __post_init__(self) -> None:
        if self.method not in _ARITY:
            raise InputError(f"unknown point generation method {self.method!r}", value=self.method)
        needed = {
            "simple": ("n",),
            "imported": ("n",),
            "stratified": ("rows", "cols", "per_cell"),
            "uniform": ("rows", "cols"),
        }[self.method]
        for field in needed:
            value = getattr(self, field)
            if value is None or int(value) != value or value < 1:
                raise InputError(
                    f"{self.method} point generation needs a positive integer {field}, "
                    f"got {value!r}",
                    value=value,
                )

    @classmethod
    def parse(cls, text: str, *, limits: Limits | None = None) -> PointSpec:
        """Parse CoralNet's compact form; anything else raises InputError naming the value.

        A generating method over ``limits.points_per_image`` raises LimitError.
        """
        match = _SPEC_RE.match(str(text).strip())
        if match is None:
            raise InputError(
                "point generation must look like m_200 (simple random), t_5_5_2 (stratified: "
                f"rows_cols_perCell), u_10_10 (uniform grid) or i_80 (imported), got {text!r}",
                value=text,
            )
        method = _CODES[match.group(1)]
        numbers = [int(x) for x in match.group(2).split("_")[1:]]
        if len(numbers) != _ARITY[method]:
            raise InputError(
                f"{method} point generation takes {_ARITY[method]} number(s), got {text!r}",
                value=text,
            )
        try:
            if method in ("simple", "imported"):
                spec = cls(method, n=numbers[0])
            elif method == "stratified":
                spec = cls(method, rows=numbers[0], cols=numbers[1], per_cell=numbers[2])
            else:
                spec = cls(method, rows=numbers[0], cols=numbers[1])
        except InputError as exc:
            raise InputError(f"{exc} in {text!r}", value=text) from exc
        if method != "imported":  # imported counts are checked on the file's rows
            spec.check_limits(limits)
        return spec

    def check_limits(self, limits: Limits | None = None) -> None:
        """Raise LimitError when this method would place more points than
        ``limits.points_per_image`` (checked before anything is allocated)."""
        current(limits).check(
            "points_per_image", self.count, what=f"point generation {self} places too many points"
        )

    def __str__(self) -> str:
        letter = _LETTERS[self.method]
        if self.method in ("simple", "imported"):
            return f"{letter}_{self.n}"
        if self.method == "stratified":
            return f"{letter}_{self.rows}_{self.cols}_{self.per_cell}"
        return f"{letter}_{self.rows}_{self.cols}"

    @property
    def count(self) -> int:
        """Number of points this method places on an image."""
        if self.method in ("simple", "imported"):
            return int(self.n)  # type: ignore[arg-type]
        per_cell = self.per_cell if self.method == "stratified" else 1
        return int(self.rows * self.cols * per_cell)  # type: ignore[operator]

    def generate(
        self,
        height: int,
        width: int,
        *,
        seed: int | np.random.Generator | None,
        area: AnnotationArea | None = None,
        limits: Limits | None = None,
    ) -> np.ndarray:
        """Points as an (N, 2) int64 array of [row, column], in CoralNet's numbering order.

        ``area`` defaults to the whole image; ``seed`` feeds ``np.random.default_rng``
        (the same seed gives the same points). More points than ``limits.points_per_image``
        raise LimitError before anything is allocated.
        """
        if height < 1 or width < 1:
            raise InputError(f"image size must be positive, got {width}x{height}")
        if self.method == "imported":
            raise InputError(
                f"{self}: imported points are read from a file, not generated", value=str(self)
            )
        self.check_limits(limits)  # first: nothing (not even the generator) made before it
        area = area or AnnotationArea.full(width=width, height=height)
        area.check(width=width, height=height)
        rng = np.random.default_rng(seed)
        if self.method == "simple":
            return self._simple(area, rng)
        if self.rows > area.height or self.cols > area.width:  # type: ignore[operator]
            raise InputError(
                f"{self}: {self.rows}x{self.cols} cells do not fit an annotation area of "
                f"{area.height} rows x {area.width} columns",
                value=str(self),
            )
        r_lo, r_hi = _cell_bounds(area.min_y, area.height, self.rows)  # type: ignore[arg-type]
        c_lo, c_hi = _cell_bounds(area.min_x, area.width, self.cols)  # type: ignore[arg-type]
        if self.method == "uniform":
            rr, cc = np.meshgrid((r_lo + r_hi) // 2, (c_lo + c_hi) // 2, indexing="ij")
            return np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.int64)
        # stratified: cells row-major, per_cell points in each.
        k = int(self.per_cell)  # type: ignore[arg-type]
        rlo, clo = np.meshgrid(r_lo, c_lo, indexing="ij")
        rhi, chi = np.meshgrid(r_hi, c_hi, indexing="ij")
        rlo, rhi = np.repeat(rlo.ravel(), k), np.repeat(rhi.ravel(), k)
        clo, chi = np.repeat(clo.ravel(), k), np.repeat(chi.ravel(), k)
        rows = rng.integers(rlo, rhi, endpoint=True)
        cols = rng.integers(clo, chi, endpoint=True)
        return np.stack([rows, cols], axis=1).astype(np.int64)

    def _simple(self, area: AnnotationArea, rng: np.random.Generator) -> np.ndarray:
        n = int(self.n)  # type: ignore[arg-type]
        rows = rng.integers(area.min_y, area.max_y, size=n, endpoint=True)
        cols = rng.integers(area.min_x, area.max_x, size=n, endpoint=True)
        cells = _NUMBERING_CELLS
        cell_r = ((rows - area.min_y) * cells) // area.height
        cell_c = ((cols - area.min_x) * cells) // area.width
        order = np.argsort(cell_r * cells + cell_c, kind="stable")
        return np.stack([rows[order], cols[order]], axis=1).astype(np.int64)
