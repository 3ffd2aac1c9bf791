"""Which points to label next: acquisition scores and diverse batches, on plain arrays.

Active learning's uncertainty sampling: a person's label is worth most where the
classifier is least sure. Two documented scores on the predicted probabilities
(Settles 2009, "Active Learning Literature Survey", section 3.1):

- ``margin``: ``p1 - p2``, the gap between the two most likely labels; small is unsure.
  The acquisition score is ``1 - margin``.
- ``entropy``: ``-sum p log p`` over the labels, divided by ``log(n_labels)`` so it is in
  [0, 1]; large is unsure. The acquisition score is the normalised entropy.

Uncertainty alone picks near-duplicates (ten patches of the same ambiguous turf), so
:func:`select_batch` first keeps the ``pool_factor * n`` most uncertain candidates, then
chooses ``n`` of them by k-center greedy on standardised features (Sener & Savarese 2018,
"Active Learning for Convolutional Neural Networks: A Core-Set Approach"): it starts from
the most uncertain candidate and repeatedly adds the one farthest from everything chosen
so far. The batch keeps the uncertainty of the pool and the spread of the feature space.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from quadrat.errors import InputError

Strategy = Literal["margin", "entropy", "random"]
STRATEGIES: tuple[str, ...] = ("margin", "entropy", "random")

#: Candidates kept per wanted point before the diversity step (the "k" of k*n).
POOL_FACTOR = 5


def check_strategy(strategy: str) -> None:
    """Raise InputError(param="strategy") for a name not in :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise InputError(
            f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}",
            value=strategy,
            param="strategy",
        )


def margin(proba: npt.ArrayLike) -> np.ndarray:
    """Top-1 minus top-2 probability per row (1 with a single class); small is unsure."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise InputError("proba must be a 2-D array (points, labels)", value=p.shape)
    if p.shape[1] == 1:
        return np.ones(len(p))
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def entropy(proba: npt.ArrayLike) -> np.ndarray:
    """Shannon entropy per row divided by log(n_labels): 0 certain, 1 uniform."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise InputError("proba must be a 2-D array (points, labels)", value=p.shape)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / np.log(p.shape[1])


def acquisition_scores(
    proba: npt.ArrayLike | None, strategy: str, *, n: int | None = None, seed: int = 0
) -> np.ndarray:
    """How much a label is wanted, per row: higher first.

    ``random`` ignores ``proba`` (give ``n``, the number of candidates) and returns
    uniform draws from ``seed``, so a random batch is reproducible.
    """
    check_strategy(strategy)
    if strategy == "random":
        count = n if n is not None else len(np.asarray(proba))
        return np.random.default_rng(seed).random(count)
    if proba is None:
        raise InputError(f"strategy {strategy!r} needs predicted probabilities", param="proba")
    if strategy == "margin":
        return 1.0 - margin(proba)
    return entropy(proba)


def standardize(features: npt.ArrayLike) -> np.ndarray:
    """Features as float32 with zero mean and unit variance per column (constant: 0)."""
    x = np.asarray(features, dtype=np.float32)
    centred = x - x.mean(axis=0, keepdims=True)
    std = centred.std(axis=0, keepdims=True)
    return centred / np.where(std > 0, std, 1.0)


def k_center_greedy(features: npt.ArrayLike, n: int, *, first: int = 0) -> np.ndarray:
    """Indices of ``n`` rows chosen by k-center greedy (farthest-first), from ``first``.

    Each step adds the row whose distance to the nearest chosen row is largest, so the
    chosen rows cover the set; exact duplicates are chosen only when nothing else is left.
    O(n * rows) distance evaluations, no matrix of all pairs.
    """
    x = np.asarray(features, dtype=np.float32)
    total = len(x)
    n = min(int(n), total)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    chosen = [int(first)]
    nearest = ((x - x[first]) ** 2).sum(axis=1)
    nearest[first] = -1.0
    while len(chosen) < n:
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((x - x[pick]) ** 2).sum(axis=1))
        nearest[chosen] = -1.0
    return np.asarray(chosen, dtype=np.int64)


def select_batch(
    scores: npt.ArrayLike,
    n: int,
    *,
    features: npt.ArrayLike | None = None,
    diversity: bool = True,
    pool_factor: int = POOL_FACTOR,
) -> np.ndarray:
    """Indices of the ``n`` candidates to label next, most wanted first.

    Without ``diversity`` (or ``features``): the ``n`` highest ``scores``. With it: the
    ``pool_factor * n`` highest, then ``n`` of those by :func:`k_center_greedy` on the
    standardised ``features`` of the pool, starting from the highest score. Ties in the
    scores keep the input order (stable sort).
    """
    s = np.asarray(scores, dtype=np.float64)
    if n < 1:
        raise InputError(f"n must be at least 1, not {n}", value=n, param="n")
    if pool_factor < 1:
        raise InputError("pool_factor must be at least 1", value=pool_factor, param="pool_factor")
    order = np.argsort(-s, kind="stable")
    if not diversity or features is None or len(s) <= n:
        return order[:n].astype(np.int64)
    pool = order[: min(len(s), pool_factor * n)]
    x = standardize(np.asarray(features)[pool])
    picked = pool[k_center_greedy(x, n, first=0)]
    return picked[np.argsort(-s[picked], kind="stable")].astype(np.int64)
