"""Probe metrics computed over a whole split, with masks applied.

BenthicNet averages its hierarchical metrics over mini-batches, so a batch with one rare
positive counts as much as a batch with hundreds, and AP of a batch without positives is
undefined. Here every metric is computed once on the concatenated split (collect batches
with :class:`SplitCollector`), and masked-out entries (nodes a label says nothing about)
are dropped before any metric sees them. Metric definitions are scikit-learn's: standard
(non-interpolated) average precision, binary F1 and Matthews correlation on the kept bits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, f1_score, matthews_corrcoef

from quadrat.classifiers.metrics import evaluate
from quadrat.errors import InputError

#: Decision threshold on (constrained) node probabilities, as BenthicNet's metrics.
THRESHOLD = 0.5


def flat_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: npt.ArrayLike | None = None
) -> dict[str, float | int]:
    """Accuracy and macro F1 of flat predictions over the whole split (and its size n)."""
    scores = evaluate(y_true, y_pred, labels)
    return {"accuracy": scores.accuracy, "macro_f1": scores.macro_f1, "n": scores.n}


def _check_multilabel(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, mask: npt.ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 2 or s.shape != y.shape:
        raise InputError(
            f"targets and scores must be (n, n_nodes) of one shape, got {y.shape} and {s.shape}",
            value=(y.shape, s.shape),
        )
    if not np.isin(y, (0, 1)).all():
        bad = y[~np.isin(y, (0, 1))].flat[0]
        raise InputError("targets must be 0 or 1", value=bad)
    if not np.isfinite(s).all():
        raise InputError("scores must be finite probabilities", value=s[~np.isfinite(s)].flat[0])
    m = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask)
    if m.shape != y.shape or m.dtype != bool:
        raise InputError(
            f"mask must be a bool array of shape {y.shape}, got {m.dtype} {m.shape}",
            value=m.shape,
        )
    return y.astype(np.int8), s, m


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    """Standard AP; NaN when there is no positive (AP is undefined, not zero)."""
    if y.size == 0 or not y.any():
        return float("nan")
    return float(average_precision_score(y, s))


def _bits(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    """F1, AP and MCC of the kept bits of one group (flattened)."""
    if y.size == 0:
        return {"f1": float("nan"), "ap": float("nan"), "mcc": float("nan")}
    pred = (s >= threshold).astype(np.int8)
    with warnings.catch_warnings():
        # MCC of a constant column is defined as 0 by sklearn; it warns, we do not.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        mcc = float(matthews_corrcoef(y, pred))
    return {
        "f1": float(f1_score(y, pred, zero_division=0.0)),
        "ap": _ap(y, s),
        "mcc": mcc,
    }


def _exact_match(y: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Share of samples whose every kept bit is right, over samples with a kept bit."""
    has_any = mask.any(axis=1)
    n = int(has_any.sum())
    if n == 0:
        return float("nan"), 0
    right = ((y == pred) | ~mask).all(axis=1)
    return float(right[has_any].mean()), n


def hierarchical_metrics(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    *,
    groups: Mapping[str, npt.ArrayLike] | None = None,
    threshold: float = THRESHOLD,
) -> dict[str, Any]:
    """Multi-label metrics of node probabilities ``scores`` against 0/1 targets, masked.

    Overall: ``subset_accuracy`` (every kept node of a sample right), ``micro_ap`` and
    ``micro_f1`` (all kept bits pooled), ``n_samples``, ``n_bits``. For each entry of
    ``groups`` (name -> node column indices; e.g. :func:`depth_groups`): ``exact_match``,
    ``f1`` (bit F1), ``ap``, ``mcc`` and the counts, on that group's kept bits only.
    A metric with nothing to measure (no kept bit, no positive for AP) is NaN.
    """
    y, s, m = _check_multilabel(y_true, scores, mask)
    pred = (s >= threshold).astype(np.int8)
    subset, n_samples = _exact_match(y, pred, m)
    pooled = _bits(y[m], s[m], threshold)
    result: dict[str, Any] = {
        "subset_accuracy": subset,
        "micro_ap": pooled["ap"],
        "micro_f1": pooled["f1"],
        "n_samples": n_samples,
        "n_bits": int(m.sum()),
    }
    if groups:
        per_group: dict[str, dict[str, float | int]] = {}
        for name, columns in groups.items():
            cols = np.asarray(columns, dtype=np.int64)
            if cols.size and (cols.min() < 0 or cols.max() >= y.shape[1]):
                raise InputError(
                    f"group {name!r} names node columns outside 0-{y.shape[1] - 1}",
                    value=name,
                )
            gm = m[:, cols]
            exact, n_group = _exact_match(y[:, cols], pred[:, cols], gm)
            bits = _bits(y[:, cols][gm], s[:, cols][gm], threshold)
            per_group[str(name)] = {
                "exact_match": exact,
                **bits,
                "n_samples": n_group,
                "n_bits": int(gm.sum()),
            }
        result["groups"] = per_group
    return result


def depth_groups(
    depths: npt.ArrayLike, heads: npt.ArrayLike | None = None
) -> dict[str, npt.NDArray[np.int64]]:
    """Node columns by depth (``"depth_1"``), or by head and depth (``"biota/depth_1"``).

    Heads do not share a label space (a biota label says nothing about relief), so their
    depths are reported apart when ``heads`` is given.
    """
    d = np.asarray(depths, dtype=np.int64)
    if d.ndim != 1:
        raise InputError(f"depths must be 1-d, got shape {d.shape}", value=d.shape)
    keys = [f"depth_{v}" for v in d]
    if heads is not None:
        h = np.asarray(heads)
        if h.shape != d.shape:
            raise InputError(
                f"heads {h.shape} and depths {d.shape} must have one length", value=h.shape
            )
        keys = [f"{head}/{key}" for head, key in zip(h, keys, strict=True)]
    groups: dict[str, list[int]] = {}
    for column, key in enumerate(keys):
        groups.setdefault(key, []).append(column)
    return {key: np.asarray(cols, dtype=np.int64) for key, cols in sorted(groups.items())}


@dataclass
class SplitCollector:
    """Gathers a split's batches so metrics run once over all of it, not per batch."""

    targets: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def add(
        self, y_true: npt.ArrayLike, scores: npt.ArrayLike, mask: npt.ArrayLike | None = None
    ) -> None:
        y, s, m = _check_multilabel(y_true, scores, mask)
        if self.targets and y.shape[1] != self.targets[0].shape[1]:
            raise InputError(
                f"batch has {y.shape[1]} nodes, earlier batches {self.targets[0].shape[1]}",
                value=y.shape[1],
            )
        self.targets.append(y)
        self.scores.append(s)
        self.masks.append(m)

    def compute(
        self, *, groups: Mapping[str, npt.ArrayLike] | None = None, threshold: float = THRESHOLD
    ) -> dict[str, Any]:
        """:func:`hierarchical_metrics` of everything added so far."""
        if not self.targets:
            raise InputError("no batch was added: nothing to score")
        return hierarchical_metrics(
            np.concatenate(self.targets),
            np.concatenate(self.scores),
            np.concatenate(self.masks),
            groups=groups,
            threshold=threshold,
        )
