"""Correcting class proportions for a classifier's known confusions (quantification).

A classifier that mistakes some CCA for Turf reports too much Turf in every image,
whatever the sample size: counting its labels ("classify and count") is biased. The
quantification literature corrects the counts with the classifier's error rates measured
on held-out points (Forman 2008, *Quantifying counts and costs via classification*, Data
Min. Knowl. Disc. 17:164-206; Bella et al. 2010, *Quantification via probability
estimators*, ICDM; Gonzalez et al. 2017, *A review on quantification learning*, ACM
Comput. Surv. 50:74):

- **ACC** (adjusted classify and count). With ``R[i, j] = P(predicted j | true i)`` from
  the validation confusion matrix, the expected share of points *predicted* as each label
  is ``q = R.T @ pi`` for true shares ``pi``; solve it for ``pi``.
- **PACC** (probabilistic ACC). The same on calibrated scores: ``q`` is the mean score
  vector of the points and ``M[i] = E[scores | true i]`` on validation points
  (:func:`quadrat.classifiers.metrics.mean_scores`).

Both are solved here as least squares on the probability simplex (``pi >= 0``,
``sum(pi) = 1``) with an exact active-set method, batched in numpy, rather than by
inverting the matrix and clipping (Forman's "clip and rescale"), which is not the
constrained optimum when a share comes out negative. A tiny ridge towards ``q`` makes
the answer unique when two labels have the same error profile (a singular matrix: the
classifier cannot tell them apart, so their split follows its own labels); such labels
are reported by :func:`indistinguishable` so callers can say so.

Labels with fewer than ``min_support`` validation points (default :data:`MIN_SUPPORT`)
have no trustworthy error rates: their row is taken as "always predicted correctly" (the
identity), so a label seen once in validation, and then mistaken, cannot pull every point
predicted as another label over to it (on Moorea, one "Off" validation point predicted as
Porites turned 42 % of the cover into "Off" without this rule: docs/cover.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quadrat.errors import InputError

#: Weight of the ridge towards the observed shares (makes the solution unique).
RIDGE = 1e-7
#: Labels with fewer validation points than this are not corrected (identity rows).
MIN_SUPPORT = 30
_TOL = 1e-12


@dataclass(frozen=True)
class Validation:
    """A classifier's error rates on its validation points, in ``labels`` order.

    ``confusion[i, j]`` counts validation points of true ``labels[i]`` predicted as
    ``labels[j]``; ``mean_scores[i]`` is the mean calibrated score vector of the points
    of true ``labels[i]`` (None when the classifier's record does not hold it).
    """

    labels: tuple[str, ...]
    confusion: npt.NDArray[np.float64]
    mean_scores: npt.NDArray[np.float64] | None = None
    classifier_id: int | None = None
    min_support: int = MIN_SUPPORT

    def __post_init__(self) -> None:
        k = len(self.labels)
        if self.confusion.shape != (k, k):
            raise InputError(
                f"confusion matrix {self.confusion.shape} does not match {k} labels",
                param="validation",
            )
        if self.mean_scores is not None and self.mean_scores.shape != (k, k):
            raise InputError(
                f"mean scores {self.mean_scores.shape} do not match {k} labels",
                param="validation",
            )
        if (self.confusion < 0).any() or not np.isfinite(self.confusion).all():
            raise InputError("confusion counts must be finite and non-negative", param="validation")

    @property
    def support(self) -> npt.NDArray[np.float64]:
        """Validation points per true label."""
        return np.asarray(self.confusion.sum(axis=1), dtype=np.float64)

    @property
    def trusted(self) -> npt.NDArray[np.float64]:
        """The support of labels with at least ``min_support`` validation points, else 0."""
        support = self.support
        return np.where(support >= max(self.min_support, 1), support, 0.0)

    def rates(self) -> npt.NDArray[np.float64]:
        """``R[i, j] = P(predicted j | true i)``; labels with too little support get the
        identity row."""
        return _rows(self.confusion, self.trusted)

    def score_rates(self) -> npt.NDArray[np.float64]:
        """``M[i] = E[scores | true i]`` (identity rows with too little support)."""
        if self.mean_scores is None:
            raise InputError("no mean validation scores", param="validation")
        return _rows(self.mean_scores * self.support[:, None], self.trusted)


def _rows(weights: np.ndarray, support: np.ndarray) -> npt.NDArray[np.float64]:
    """Row-normalise ``weights``; rows without support (or weight) become identity rows."""
    k = weights.shape[-1]
    totals = weights.sum(axis=-1, keepdims=True)
    eye = np.broadcast_to(np.eye(k), weights.shape)
    ok = (totals > 0) & (np.broadcast_to(support[..., None], totals.shape) > 0)
    return np.where(ok, weights / np.where(totals > 0, totals, 1.0), eye)


def resample_rates(
    validation: Validation, method: str, replicates: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``replicates`` bootstrap copies of the correction matrix (shape ``(B, K, K)``).

    ACC: each true label's row of the confusion matrix is redrawn from a multinomial of
    its own support (the bootstrap of the validation points, label by label). PACC: the
    validation points' individual scores are not stored, so each row's mean is redrawn
    from a Dirichlet(support x mean): the same mean, and a variance of
    ``m (1 - m) / (n + 1)``, at least that of a mean of ``n`` score vectors (conservative).
    """
    support = validation.trusted
    if method == "acc":
        p = validation.rates()
        counts = rng.multinomial(support.astype(np.int64), p, size=(replicates, len(support)))
        return _rows(counts.astype(np.float64), support)
    if method == "pacc":
        m = validation.score_rates()
        draws = rng.standard_gamma(m * support[:, None], size=(replicates, *m.shape))
        out = _rows(draws, support)
        empty = draws.sum(axis=-1) <= 0  # every gamma draw underflowed: keep the mean
        out[empty] = np.broadcast_to(m, out.shape)[empty]
        return out
    raise InputError(f"no correction matrix for method {method!r}", value=method, param="corrected")


def indistinguishable(rates: npt.ArrayLike, labels: Any) -> list[tuple[str, str]]:
    """Pairs of labels whose rows of ``rates`` are (nearly) identical: the classifier
    errs on both the same way, so a correction cannot split them."""
    r = np.asarray(rates, dtype=np.float64)
    names = [str(x) for x in labels]
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.abs(r[i] - r[j]).max() < 1e-9:
                pairs.append((names[i], names[j]))
    return pairs


def simplex_lstsq(
    rates: npt.ArrayLike,
    observed: npt.ArrayLike,
    *,
    which: npt.ArrayLike | None = None,
    ridge: float = RIDGE,
    chunk: int = 65536,
) -> npt.NDArray[np.float64]:
    """True shares ``pi`` for observed shares ``q``: argmin ``|R.T pi - q|^2 + ridge
    |pi - q|^2`` subject to ``pi >= 0``, ``sum(pi) = 1``, for many ``q`` at once.

    ``rates``: one ``(K, K)`` matrix, or a stack ``(B, K, K)`` with ``which`` (n,) picking
    the matrix of each row of ``observed`` (n, K). Exact: an active-set method (drop the
    negative shares, re-solve on the rest, add back any share whose multiplier says it
    should be positive) on batched KKT systems.
    """
    q = np.asarray(observed, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    if r.ndim == 2:
        r = r[None]
    if q.ndim != 2 or r.shape[1:] != (q.shape[1], q.shape[1]):
        raise InputError(f"rates {r.shape} do not fit observed shares {q.shape}")
    idx = np.zeros(len(q), np.intp) if which is None else np.asarray(which, dtype=np.intp)
    k = q.shape[1]
    # f(pi) = pi' H pi - 2 g' pi (+ const), H = R R' + ridge I, g = R q + ridge q.
    hess = np.einsum("bij,bkj->bik", r, r) + ridge * np.eye(k)
    # Every share free: one KKT inverse per matrix serves all its rows.
    kkt = np.zeros((len(r), k + 1, k + 1))
    kkt[:, :k, :k] = hess
    kkt[:, :k, k] = 1.0
    kkt[:, k, :k] = 1.0
    inverse = np.linalg.inv(kkt)
    out = np.empty_like(q)
    for start in range(0, len(q), chunk):
        part = slice(start, start + chunk)
        rows = idx[part]
        g = np.einsum("nij,nj->ni", r[rows], q[part]) + ridge * q[part]
        first = np.einsum("nij,nj->ni", inverse[rows][:, :k, :], _with_one(g))
        out[part] = first
        bad = np.nonzero((first < -_TOL).any(axis=1))[0]
        if bad.size:
            out[start + bad] = _active_set(hess[rows[bad]], g[bad])
    return np.clip(out, 0.0, None) / np.maximum(np.clip(out, 0.0, None).sum(1, keepdims=True), _TOL)


def _with_one(g: np.ndarray) -> np.ndarray:
    return np.concatenate([g, np.ones((len(g), 1))], axis=1)


def _solve_free(h: np.ndarray, g: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min pi'H pi - 2g'pi, sum(pi) = 1, pi_j = 0 off ``free``: (pi, the sum's multiplier)."""
    n, k = g.shape
    both = free[:, :, None] & free[:, None, :]
    kkt = np.zeros((n, k + 1, k + 1))
    kkt[:, :k, :k] = np.where(both, h, 0.0) + np.eye(k) * ~free[:, None, :]
    kkt[:, :k, k] = free
    kkt[:, k, :k] = free
    rhs = _with_one(np.where(free, g, 0.0))
    sol = np.linalg.solve(kkt, rhs[..., None])[..., 0]
    return sol[:, :k], sol[:, k]


def _active_set(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    n, k = g.shape
    free = np.ones((n, k), dtype=bool)
    pi = np.zeros((n, k))
    todo = np.arange(n)
    for _ in range(4 * k + 4):
        if todo.size == 0:
            break
        p, lam = _solve_free(h[todo], g[todo], free[todo])
        negative = free[todo] & (p < -_TOL)
        has_neg = negative.any(axis=1)
        # Drop every negative share (keep the largest one free so the set is never empty).
        drop = negative.copy()
        keep = np.argmax(np.where(free[todo], p, -np.inf), axis=1)
        drop[np.arange(todo.size), keep] = False
        free[todo[has_neg]] &= ~drop[has_neg]
        # Where every free share is >= 0: check the fixed ones' multipliers.
        settled = ~has_neg
        mult = np.einsum("nij,nj->ni", h[todo], p) - g[todo] + lam[:, None]
        violated = ~free[todo] & (mult < -1e-10)
        add = settled & violated.any(axis=1)
        worst = np.argmin(np.where(violated, mult, np.inf), axis=1)
        free[todo[add], worst[add]] = True
        done = settled & ~add
        pi[todo[done]] = np.clip(p[done], 0.0, None)
        todo = todo[~done]
    if todo.size:  # did not settle (degenerate ties): the last iterate, clipped and rescaled
        p, _ = _solve_free(h[todo], g[todo], free[todo])
        p = np.clip(p, 0.0, None)
        pi[todo] = p / np.maximum(p.sum(axis=1, keepdims=True), _TOL)
    return pi / np.maximum(pi.sum(axis=1, keepdims=True), _TOL)
