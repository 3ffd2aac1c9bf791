"""Synthetic point features for tests and benchmarks.

Real sources are imbalanced (a few dominant labels, a long tail), points of one image share
lighting and camera (an image effect), and images are dominated by a few labels. The
generator reproduces those three traits so that grouped splits, rare-label handling and
calibration are exercised the way real data exercises them, without shipping any data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quadrat.errors import InputError


@dataclass(frozen=True)
class SyntheticFeatures:
    """Features ``X`` (n, d), integer labels ``y`` (n,) and image ids ``groups`` (n,)."""

    X: npt.NDArray[np.floating]
    y: npt.NDArray[np.int64]
    groups: npt.NDArray[np.int64]


def make_point_features(
    n_points: int,
    *,
    n_features: int = 1280,
    n_classes: int = 20,
    points_per_image: int = 50,
    separation: float = 0.1,
    image_effect: float = 0.5,
    dtype: npt.DTypeLike = np.float16,
    random_state: int = 0,
) -> SyntheticFeatures:
    """Gaussian class clusters with per-image shifts and Zipf-like label frequencies.

    ``separation`` is the per-dimension standard deviation of the class centres (noise has
    standard deviation 1), so it sets how hard the problem is; 0.1 at 1280 dimensions
    gives validation accuracies in the 0.7-0.9 range of real CoralNet sources.
    ``image_effect`` is the per-dimension standard deviation of each image's shared shift.
    Features are non-negative-biased like pooled CNN activations and stored as ``dtype``
    (float16 by default, like the feature store).
    """
    if n_points < 1 or n_classes < 2 or points_per_image < 1:
        raise InputError(
            "n_points >= 1, n_classes >= 2 and points_per_image >= 1 required",
            value=(n_points, n_classes, points_per_image),
        )
    rng = np.random.default_rng(random_state)
    centres = rng.normal(0.0, separation, size=(n_classes, n_features)).astype(np.float32)
    prior = 1.0 / np.arange(1, n_classes + 1) ** 0.8
    prior /= prior.sum()

    groups = np.arange(n_points, dtype=np.int64) // points_per_image
    n_images = int(groups[-1]) + 1
    # Each image draws its own label mix around the source prior: a few labels dominate it.
    image_mix = rng.dirichlet(prior * n_classes * 0.5, size=n_images)
    cumulative = np.cumsum(image_mix, axis=1)
    u = rng.random(n_points)
    y = (u[:, None] > cumulative[groups]).sum(axis=1).clip(0, n_classes - 1).astype(np.int64)

    image_shift = rng.normal(0.0, image_effect, size=(n_images, n_features)).astype(np.float32)
    X = rng.standard_normal(size=(n_points, n_features), dtype=np.float32)
    X += centres[y]
    X += image_shift[groups]
    X += 1.0
    return SyntheticFeatures(X=X.astype(dtype, copy=False), y=y, groups=groups)


@dataclass(frozen=True)
class ImageSplit:
    """Row indices of a split by image: no image has points in two parts."""

    train: npt.NDArray[np.intp]
    reference: npt.NDArray[np.intp]
    validation: npt.NDArray[np.intp]


def make_subclass_features(
    n_points: int,
    *,
    n_features: int = 1280,
    n_classes: int = 20,
    modes_per_class: int = 2,
    points_per_image: int = 50,
    zipf_exponent: float = 1.0,
    separation: float = 0.09,
    mode_spread: float = 0.08,
    image_offset: float = 0.6,
    dtype: npt.DTypeLike = np.float16,
    random_state: int = 0,
) -> SyntheticFeatures:
    """A second, harder generator: Zipf labels, sub-modes per label, per-image offsets.

    Written apart from :func:`make_point_features` so that a method tuned on one is checked
    on data it was not tuned on. Labels are drawn independently per point with Zipf-like
    frequencies (``1 / rank ** zipf_exponent``: the first label is common, the last rare);
    each label is a mixture of ``modes_per_class`` Gaussian sub-modes (a coral seen close
    up or from afar: centres ``separation`` apart per dimension between labels,
    ``mode_spread`` between one label's modes) picked with equal odds; every image adds
    one shared offset (standard deviation ``image_offset`` per dimension: lighting,
    camera, water), which a split by image exposes and a split by point hides. Dimensions
    have unequal scales (log-normal), as pooled CNN activations do.
    """
    if n_points < 1 or n_classes < 2 or points_per_image < 1 or modes_per_class < 1:
        raise InputError(
            "n_points, points_per_image and modes_per_class >= 1 and n_classes >= 2 required",
            value=(n_points, n_classes, points_per_image, modes_per_class),
        )
    rng = np.random.default_rng([random_state, 16])
    centres = rng.normal(0.0, separation, size=(n_classes, 1, n_features))
    # Sub-modes spread around their label's centre, their mean at it: a linear model sees
    # one wide cloud per label, a nonlinear one can separate the modes.
    spread = rng.normal(0.0, mode_spread, size=(n_classes, modes_per_class, n_features))
    modes = centres + spread - spread.mean(axis=1, keepdims=True)
    prior = 1.0 / np.arange(1, n_classes + 1) ** zipf_exponent
    y = rng.choice(n_classes, size=n_points, p=prior / prior.sum()).astype(np.int64)
    mode = rng.integers(0, modes_per_class, size=n_points)
    groups = np.arange(n_points, dtype=np.int64) // points_per_image
    n_images = int(groups[-1]) + 1
    offsets = rng.normal(0.0, image_offset, size=(n_images, n_features)).astype(np.float32)
    scale = np.exp(rng.normal(0.0, 0.5, size=n_features)).astype(np.float32)
    X = rng.standard_normal(size=(n_points, n_features), dtype=np.float32)
    X += modes[y, mode].astype(np.float32)
    X += offsets[groups]
    X += 2.0
    X *= scale
    return SyntheticFeatures(X=X.astype(dtype, copy=False), y=y, groups=groups)


def split_by_image(
    groups: npt.ArrayLike,
    *,
    reference: float = 0.1,
    validation: float = 0.1,
    random_state: int = 0,
) -> ImageSplit:
    """Shuffle the images and cut them into train / reference / validation (fractions of
    the images; each part gets at least one image). pyspacer's split has this shape:
    train, ``ref`` (early stopping and calibration) and ``val`` (the reported figure)."""
    g = np.asarray(groups)
    images = np.unique(g)
    if images.size < 3:
        raise InputError("need at least 3 images to split by image", value=int(images.size))
    if not (0 < reference < 1 and 0 < validation < 1 and reference + validation < 1):
        raise InputError(
            "reference and validation are fractions in (0, 1) with a sum below 1",
            value=(reference, validation),
        )
    order = np.random.default_rng(random_state).permutation(images)
    n_ref = max(1, round(reference * images.size))
    n_val = max(1, round(validation * images.size))
    n_val = min(n_val, images.size - n_ref - 1)
    val_images, ref_images = order[:n_val], order[n_val : n_val + n_ref]
    in_val, in_ref = np.isin(g, val_images), np.isin(g, ref_images)
    return ImageSplit(
        train=np.flatnonzero(~in_val & ~in_ref),
        reference=np.flatnonzero(in_ref),
        validation=np.flatnonzero(in_val),
    )
