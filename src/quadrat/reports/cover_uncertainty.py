"""Percent cover with confidence intervals, and cover corrected for the classifier's errors.

Per image, per group of images (a site: any metadata column) or per source, from one
table of points (:func:`cover_intervals`). A group's cover is the mean of its images'
covers (each image weighs the same, as CoralNet's ``ALL IMAGES`` row), and each image's
cover counts its points: a person's label (``known``) as it is, a machine label as the
classifier said (``method="naive"``, CoralNet's figure) or corrected for the classifier's
validation confusions (``"acc"``, ``"pacc"``: :mod:`quadrat.reports.quantify`). The
correction is solved once per group on the pooled machine points (weighted as they weigh
in the group's mean), not per image, so small images do not each clip at zero.

Intervals come from a two-stage bootstrap (Davison & Hinkley 1997, section 3.8): in each
replicate the group's images are drawn with replacement, then each drawn image's points
are drawn with replacement (a multinomial over the image's point categories: known label
k, or machine label j), and for the corrected methods the correction matrix is redrawn
from the validation counts (:func:`quadrat.reports.quantify.resample_rates`), so the
interval also carries the uncertainty of the classifier's error rates. Bounds are the
percentile interval of the replicates. Everything is vectorised over replicates and
images (chunks bounded in memory): 10,000 images of 200 points with 1,000 replicates take
15-60 s per site or for the source on the shared 2-core VM; per image, 2,000 images take
12-25 s, growing linearly (``benchmarks/cover_speed.py``, docs/cover.md).

For PACC, points are resampled within their (image, machine label) stratum and carry the
stratum's mean score vector: the spread of scores within a stratum is not resampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from quadrat.errors import InputError, StateError
from quadrat.reports.quantify import (
    Validation,
    indistinguishable,
    resample_rates,
    simplex_lstsq,
)

METHODS = ("naive", "acc", "pacc")
#: Most replicates a caller may ask for (the bootstrap's memory grows with it).
MAX_REPLICATES = 100_000
#: Elements (replicates x images x categories) handled at once.
_CHUNK_ELEMENTS = 8_000_000


@dataclass(frozen=True)
class CoverSettings:
    """How a cover table was estimated (stored in the frame's ``attrs["cover"]``)."""

    method: str
    confidence: float
    replicates: int
    seed: int
    intervals: bool


def check_settings(method: str, confidence: float, replicates: int) -> None:
    """Arguments of :func:`cover_intervals`, named as the library names them."""
    if method not in METHODS:
        raise InputError(
            f"corrected must be one of none, acc, pacc, not {method!r}",
            value=method,
            param="corrected",
        )
    if not 0.0 < float(confidence) < 1.0:
        raise InputError(
            f"confidence must lie strictly between 0 and 1, not {confidence}",
            value=confidence,
            param="confidence",
        )
    if int(replicates) != replicates or not 1 <= replicates <= MAX_REPLICATES:
        raise InputError(
            f"replicates must be a whole number from 1 to {MAX_REPLICATES}, not {replicates}",
            value=replicates,
            param="replicates",
        )


def cover_intervals(
    points: pd.DataFrame,
    labels: Sequence[str],
    *,
    group: str = "image",
    method: str = "naive",
    validation: Validation | None = None,
    scores: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    replicates: int = 1000,
    seed: int = 0,
    intervals: bool = True,
) -> pd.DataFrame:
    """Cover per group with its estimate and bootstrap interval, one row per (group, label).

    ``points``: one row per point with ``image``, ``label`` (short code) and ``known``
    (True: a person's label, taken as true; False: a machine label, corrected); the
    ``group`` column (constant within an image; ``"image"`` itself for per-image cover).
    ``labels``: the cover labels in output order. ``validation``: the classifier's
    validation counts (needed by ``acc`` and ``pacc`` when any point is a machine one);
    ``scores`` (n, len(validation.labels)): each machine point's calibrated scores, for
    ``pacc`` (rows of known points are ignored).

    Returns columns ``group, images, points, label, cover`` (the naive percent, as
    CoralNet), ``estimate`` (the method's percent), ``lower``, ``upper`` (NaN without
    ``intervals``). ``attrs["cover"]`` holds the :class:`CoverSettings`; a singular
    correction (labels the classifier cannot tell apart) is listed in
    ``attrs["indistinguishable"]``.
    """
    check_settings(method, confidence, replicates)
    for column in ("image", "label", "known", group):
        if column not in points.columns:
            raise InputError(f"points lack column {column!r}", value=column)
    labels = [str(x) for x in labels]
    if len(set(labels)) != len(labels):
        raise InputError("cover labels must be unique", value=labels)
    settings = CoverSettings(method, float(confidence), int(replicates), seed, intervals)
    if points.empty:
        columns = ["group", "images", "points", "label", "cover", "estimate", "lower", "upper"]
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        empty.attrs.update(cover=settings, indistinguishable=[])
        return empty
    data = _Data.build(points, labels, group, method, validation, scores)
    rng = np.random.default_rng(seed)
    rates, pairs = _rates(data, method, replicates if intervals else 0, rng)
    shares = data.counts / np.maximum(data.counts.sum(axis=1, keepdims=True), 1.0)
    whole = (shares[None], data.strata, rates[:1])
    place = (data.group_of, data.starts, data.group_images)
    estimate = _cover(data, *whole, method, *place)[0]
    naive = _cover(data, *whole, "naive", *place)[0]
    lower = np.full_like(estimate, np.nan)
    upper = np.full_like(estimate, np.nan)
    if intervals:
        alpha = (1.0 - confidence) / 2.0
        for lo, hi in data.group_chunks(replicates):
            reps = _replicates(data, lo, hi, replicates, rng, rates[1:], method)
            lower[lo:hi] = np.quantile(reps, alpha, axis=0)
            upper[lo:hi] = np.quantile(reps, 1.0 - alpha, axis=0)
    n_groups, n_labels = estimate.shape
    frame = pd.DataFrame(
        {
            "group": np.repeat(data.group_names, n_labels),
            "images": np.repeat(data.group_images, n_labels),
            "points": np.repeat(data.group_points, n_labels),
            "label": np.tile(np.asarray(labels, dtype=object), n_groups),
            "cover": 100.0 * naive.ravel(),
            "estimate": 100.0 * estimate.ravel(),
            "lower": 100.0 * lower.ravel(),
            "upper": 100.0 * upper.ravel(),
        }
    )
    frame.attrs["cover"] = settings
    frame.attrs["indistinguishable"] = pairs
    return frame


@dataclass
class _Data:
    """Points as counts: images sorted by group, categories = L known labels then K
    machine labels (the classifier's, in ``classes`` order)."""

    labels: list[str]
    classes: list[str]
    embed: npt.NDArray[np.intp]  # class k -> column of ``labels``
    counts: npt.NDArray[np.float64]  # (I, L + K)
    strata: npt.NDArray[np.float64] | None  # (I, K, K) mean scores per (image, machine label)
    group_of: npt.NDArray[np.intp]  # (I,) group index, non-decreasing
    group_names: np.ndarray
    group_images: npt.NDArray[np.int64]
    group_points: npt.NDArray[np.int64]
    starts: npt.NDArray[np.intp]  # first image of each group
    validation: Validation | None

    @classmethod
    def build(
        cls,
        points: pd.DataFrame,
        labels: list[str],
        group: str,
        method: str,
        validation: Validation | None,
        scores: npt.ArrayLike | None,
    ) -> _Data:
        known = points["known"].to_numpy(dtype=bool)
        label = points["label"].astype("string").to_numpy(dtype=object)
        if pd.isna(label).any():
            raise InputError("every point needs a label (leave out unannotated images first)")
        machine = ~known
        if method != "naive" and machine.any():
            if validation is None:
                raise StateError(
                    f"corrected cover ({method}) needs the validation confusions of the "
                    "classifier that labelled the machine points",
                    param="corrected",
                )
            classes = [str(x) for x in validation.labels]
        else:
            classes = list(labels)
        index = {c: i for i, c in enumerate(labels)}
        unknown = sorted({str(x) for x in label[known]} - set(index))
        if unknown:
            raise InputError(f"label(s) not among the cover labels: {', '.join(unknown[:5])}")
        missing = sorted(set(classes) - set(index))
        if missing:
            raise InputError(
                f"classifier label(s) not among the cover labels: {', '.join(missing[:5])}"
            )
        class_index = {c: i for i, c in enumerate(classes)}
        stray = sorted({str(x) for x in label[machine]} - set(class_index))
        if stray:
            raise StateError(
                f"machine label(s) {', '.join(stray[:5])} are not labels of the classifier "
                "whose confusions correct them; classify again",
                param="corrected",
            )
        n_l, n_k = len(labels), len(classes)
        codes = pd.Index(label.astype(str))
        as_label = pd.Index(labels).get_indexer(codes)
        as_class = pd.Index(classes).get_indexer(codes)
        category = np.where(known, as_label, n_l + as_class).astype(np.intp)
        image_pos, _ = pd.factorize(points["image"])
        point_group, group_names = pd.factorize(
            points[group].astype("string").fillna(""), sort=True
        )
        n_i = int(image_pos.max()) + 1
        group_codes = np.empty(n_i, dtype=np.intp)
        group_codes[image_pos[::-1]] = point_group[::-1]  # each image's first point's group
        if (group_codes[image_pos] != point_group).any():
            raise InputError(f"column {group!r} must be the same for every point of an image")
        # Images sorted by group (stable), so every group is a contiguous run.
        rank = np.argsort(group_codes, kind="stable")
        new_pos = np.empty_like(rank)
        new_pos[rank] = np.arange(rank.size)
        image_pos = new_pos[image_pos]
        group_of = group_codes[rank]
        counts = (
            np.bincount(image_pos * (n_l + n_k) + category, minlength=n_i * (n_l + n_k))
            .reshape(n_i, n_l + n_k)
            .astype(np.float64)
        )
        strata = None
        if method == "pacc" and machine.any():
            assert validation is not None
            if validation.mean_scores is None:
                raise StateError(
                    "the classifier's record holds no mean validation scores (it was "
                    "trained by an older quadrat): train a new classifier, or use acc",
                    param="corrected",
                )
            if scores is None:
                raise StateError("pacc needs each machine point's scores", param="corrected")
            s = np.asarray(scores, dtype=np.float64)
            if s.shape != (len(points), n_k):
                raise InputError(f"scores must be ({len(points)}, {n_k}), got {s.shape}")
            cell = image_pos[machine] * n_k + category[machine] - n_l  # (image, machine label)
            sums = np.stack(
                [np.bincount(cell, weights=column, minlength=n_i * n_k) for column in s[machine].T],
                axis=1,
            ).reshape(n_i, n_k, n_k)
            strata = sums / np.maximum(counts[:, n_l:], 1.0)[:, :, None]
        group_images = np.bincount(group_of, minlength=len(group_names)).astype(np.int64)
        group_points = np.bincount(
            group_of, weights=counts.sum(axis=1), minlength=len(group_names)
        ).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(group_images)[:-1]]).astype(np.intp)
        return cls(
            labels=labels,
            classes=classes,
            embed=np.asarray([index[c] for c in classes], dtype=np.intp),
            counts=counts,
            strata=strata,
            group_of=group_of,
            group_names=np.asarray(group_names, dtype=object),
            group_images=group_images,
            group_points=group_points,
            starts=starts,
            validation=validation if method != "naive" and machine.any() else None,
        )

    def group_chunks(self, replicates: int) -> list[tuple[int, int]]:
        """Runs of whole groups whose bootstrap arrays fit in :data:`_CHUNK_ELEMENTS`."""
        width = self.counts.shape[1] + (len(self.classes) ** 2 if self.strata is not None else 0)
        budget = max(1, _CHUNK_ELEMENTS // max(1, replicates * width))
        chunks, lo = [], 0
        n_groups = len(self.group_names)
        while lo < n_groups:
            hi, images = lo + 1, int(self.group_images[lo])
            while hi < n_groups and images + int(self.group_images[hi]) <= budget:
                images += int(self.group_images[hi])
                hi += 1
            chunks.append((lo, hi))
            lo = hi
        return chunks


def _rates(
    data: _Data, method: str, replicates: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], list[tuple[str, str]]]:
    """The correction matrix, then ``replicates`` redrawn copies: ``(1 + B, K, K)``."""
    k = len(data.classes)
    if method == "naive" or data.validation is None:
        return np.broadcast_to(np.eye(k), (1 + replicates, k, k)), []
    observed = data.validation.rates() if method == "acc" else data.validation.score_rates()
    pairs = indistinguishable(observed, data.classes)
    if replicates == 0:
        return observed[None], pairs
    drawn = resample_rates(data.validation, method, replicates, rng)
    return np.concatenate([observed[None], drawn]), pairs


def _by_group(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum ``values`` (B, I, ...) over each group's run of images: (B, G, ...)."""
    return np.add.reduceat(values, starts, axis=1)


def _replicates(
    data: _Data,
    lo: int,
    hi: int,
    replicates: int,
    rng: np.random.Generator,
    rates: npt.NDArray[np.float64],
    method: str,
) -> npt.NDArray[np.float64]:
    """Bootstrap covers ``(B, hi - lo, L)`` of groups ``lo:hi``: images, then points."""
    first = int(data.starts[lo])
    last = int(data.starts[hi - 1] + data.group_images[hi - 1])
    counts = data.counts[first:last]
    group_of = data.group_of[first:last] - lo
    sizes = data.group_images[lo:hi]
    starts = data.starts[lo:hi] - first
    # Stage 1: each group's images, drawn with replacement (slot s draws within its group).
    n_i = last - first
    times: npt.NDArray[np.float64]
    if sizes.max() == 1:  # one image a group (per-image cover): nothing to draw
        times = np.ones((replicates, n_i))
    else:
        u = rng.random((replicates, n_i))
        drawn = starts[group_of] + np.floor(u * sizes[group_of]).astype(np.intp)
        flat = (np.arange(replicates)[:, None] * n_i + drawn).ravel()
        times = np.bincount(flat, minlength=replicates * n_i).astype(np.float64)
        times = times.reshape(replicates, n_i)
    # Stage 2: an image drawn t times gives t independent draws of its points; their sum
    # is one multinomial of t x its points over its categories, and each draw's point
    # shares weigh 1 / (the group's images) in the group's mean.
    n_points = counts.sum(axis=1)
    shares = _multinomial(rng, (times * n_points).astype(np.int64), counts)
    shares /= np.maximum(n_points, 1.0)[:, None]
    strata = None if data.strata is None else data.strata[first:last]
    return _cover(data, shares, strata, rates, method, group_of, starts, sizes)


def _multinomial(rng: np.random.Generator, n: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Draws (B, I, C) of Multinomial(n[b, i], counts[i] / sum), drawing only over each
    image's categories that occur (most of the C are empty in any one image)."""
    present = counts > 0
    width = max(1, int(present.sum(axis=1).max()))
    # Each image's occurring categories first (stable), padded with empty ones.
    order = np.argsort(~present, axis=1, kind="stable")[:, :width]
    sub = np.take_along_axis(counts, order, axis=1)
    p = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1.0)
    drawn = rng.multinomial(n, p)
    out = np.zeros((*n.shape, counts.shape[1]))
    np.put_along_axis(out, np.broadcast_to(order, drawn.shape), drawn, axis=2)
    return out


def _cover(
    data: _Data,
    shares: np.ndarray,
    strata: np.ndarray | None,
    rates: np.ndarray,
    method: str,
    group_of: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
) -> np.ndarray:
    """Group covers ``(B, G, L)`` as fractions. ``shares[b, i]``: image i's point shares
    per category, summed over its draws in replicate b (so a group's shares sum to its
    number of images); ``rates[b]`` corrects replicate b. The correction is solved once
    per group, on the group's pooled machine shares."""
    n_l, n_k = len(data.labels), len(data.classes)
    share = _by_group(shares, starts) / sizes[None, :, None]
    cover = share[..., :n_l].copy()
    machine = share[..., n_l:]
    if method == "naive":
        cover[..., data.embed] += machine  # embed: distinct columns
        return cover
    if method == "pacc" and strata is not None:
        scored = np.einsum("bik,ikj->bij", shares[..., n_l:], strata)
        machine = _by_group(scored, starts) / sizes[None, :, None]
    n_b, n_g = machine.shape[:2]
    mass = machine.sum(axis=2).ravel()
    rows = np.nonzero(mass > 0)[0]
    if rows.size:
        flat = machine.reshape(-1, n_k)[rows] / mass[rows, None]
        solved = simplex_lstsq(rates, flat, which=rows // n_g)
        corrected = np.zeros((n_b * n_g, n_k))
        corrected[rows] = solved * mass[rows, None]
        cover[..., data.embed] += corrected.reshape(n_b, n_g, n_k)
    return cover


def wide_cover(frame: pd.DataFrame, *, bounds: bool = True) -> pd.DataFrame:
    """One row per group: ``<label>`` (naive percent) for every label, then ``<label>
    estimate``, ``<label> lower``, ``<label> upper`` per label (bounds only with
    ``bounds``), in the long frame's label order."""
    labels = list(dict.fromkeys(frame["label"]))
    groups = list(dict.fromkeys(frame["group"]))
    out = pd.DataFrame(index=pd.Index(groups, name="group"))
    by = frame.set_index(["group", "label"])
    for label in labels:
        out[label] = by.xs(label, level="label")["cover"].reindex(groups).to_numpy()
    parts = ("estimate", "lower", "upper") if bounds else ("estimate",)
    for label in labels:
        rows = by.xs(label, level="label").reindex(groups)
        for part in parts:
            out[f"{label} {part}"] = rows[part].to_numpy()
    return out


def describe(settings: Any) -> dict[str, Any]:
    """The settings as plain values (for a CSV's Method/Confidence/Replicates columns)."""
    return {
        "Method": settings.method,
        "Confidence": settings.confidence if settings.intervals else None,
        "Replicates": settings.replicates if settings.intervals else None,
    }
