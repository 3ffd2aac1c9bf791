"""How much training a source gets, by its size: CoralNet's MLP shape, the epoch budget,
when calibration is cross-validated, and early stopping's rule.

Kept apart from the estimators (:mod:`quadrat.classifiers.estimators`) because these are
the numbers the benchmarks against pyspacer tune (docs/performance.md): each constant
says what it was measured on.
"""

from __future__ import annotations

import math

from quadrat.errors import InputError

#: CoralNet switches to the larger, slower-learning MLP from this many training points.
LARGE_SOURCE_POINTS = 50_000
#: Default ``cv_max_points`` of logistic regression: ``calibration="auto"`` calibrates by
#: cross-validation up to this many training points and on a held-out part above. Holdout
#: calibration on a small source fits the sigmoids on a few images and the model on 90 %
#: of the points; cv uses every point for both, at cv_folds + 1 fits (3 folds by default:
#: 4 lbfgs fits, under a second at 1,000 points). Measured on a small real source,
#: holdout cost the calibrated LR 11 points of macro F1 (0.804 vs 0.916).
CV_MAX_POINTS = 10_000
#: Default ``cv_max_points`` of the MLP: cv costs cv_folds + 1 network fits (3 folds by
#: default for the MLP), so the MLP uses it only on tiny sources, where a held-out part of
#: a few images would miss labels and make early stopping noisy, and otherwise selects its
#: epoch count on the held-out calibration images.
MLP_CV_MAX_POINTS = 2_000
#: Epoch budget of each of the MLP's cross-validation fits (cv_folds + 1 of them).
MLP_CV_MAX_EPOCHS = 25
#: ``calibration="auto"`` also uses cv when the held-out part would hold fewer images than
#: this (fewer than 100 images at 10 %): a few images are too few to choose epochs or fit
#: sigmoids on. Measured on Moorea (16 training photos, texture features, 5 image splits),
#: holdout gave the MLP 0.630 accuracy on held-out photos and cv 0.718.
MIN_HOLDOUT_IMAGES = 10
#: The MLP's epoch budget is at least this many Adam steps (epochs are raised on small
#: sources, where CoralNet's fixed 10 epochs are only a few dozen steps), at most
#: ``MAX_MLP_EPOCHS`` epochs: the work stays proportionate to the points.
MIN_MLP_STEPS = 1_500
MAX_MLP_EPOCHS = 60
#: With early stopping the budget is at least this many epochs (CoralNet's 10 without):
#: large sources were still improving at epoch 10 (subclass 100k: 0.709 against
#: pyspacer's 0.713), and early stopping ends the run when more epochs stop helping.
EARLY_STOPPING_MIN_EPOCHS = 20
#: Early stopping: training stops after this many epochs in a row that ``keeps_epoch``
#: rejects (clearly below the best held-out accuracy); the last kept epoch's weights stay.
PATIENCE_EPOCHS = 4


def coralnet_mlp_hyperparameters(n_train: int) -> tuple[tuple[int, ...], float]:
    """CoralNet 1.0's MLP shape and Adam learning rate for ``n_train`` training points.

    Under 50,000 points: one hidden layer of 100 at 1e-3; from 50,000: (200, 100) at 1e-4.
    """
    if n_train < 0:
        raise InputError(f"n_train must be >= 0, got {n_train}", value=n_train, param="n_train")
    if n_train < LARGE_SOURCE_POINTS:
        return (100,), 1e-3
    return (200, 100), 1e-4


def mlp_epochs(
    n_train: int, batch_size: int, *, min_epochs: int = 10, max_epochs: int = MAX_MLP_EPOCHS
) -> int:
    """Epoch budget: CoralNet's 10 epochs, raised so training takes >= MIN_MLP_STEPS steps."""
    steps_per_epoch = max(1, math.ceil(n_train / max(1, batch_size)))
    return int(min(max_epochs, max(min_epochs, math.ceil(MIN_MLP_STEPS / steps_per_epoch))))


def keeps_epoch(curve: list[float], n_ref: int) -> bool:
    """Early stopping's rule: is the last epoch of ``curve`` (held-out accuracy per epoch
    on ``n_ref`` points) the one to keep? Yes when it is within one standard error of the
    best so far: a tie goes to the later epoch. On a few hundred held-out points the curve
    is noisy, and stopping at its first peak left the network under-trained (subclass 10k:
    0.555 held-out accuracy against 0.570 with this rule)."""
    best = max(curve)
    return curve[-1] >= best - math.sqrt(best * (1.0 - best) / max(1, n_ref))


#: Logistic regression's ``C="auto"`` grid (:mod:`quadrat.classifiers.regularization`):
#: decades from a strong penalty to a weak one. Measured best values ran from 0.001
#: (synthetic sources with per-image offsets) through 0.3 (Moorea, texture) to 1
#: (Seattle, texture); 1 was the fixed default before.
LR_CS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: The walk along ``LR_CS`` (strongest penalty first) stops after this many values in a
#: row without a gain in calibrated accuracy. 1: on thousands of held-out points the
#: curve had one peak in every source measured, and each value costs a fit per fold
#: (about 0.55 s per fold at 10,000 points, a third of the search).
LR_PATH_PATIENCE = 1
#: ``C="auto"`` searches only from this many training points; below, ``C`` is 1. On
#: 1,000 points the search cost 5x the fit (2.5 s against 0.4 s, more than pyspacer's
#: whole call) and its choice moved held-out accuracy only within noise (subclass 0.43
#: either way; point 0.45 at 1 against 0.30 at its choice, 10, on 100 validation points).
LR_SEARCH_MIN_POINTS = 5_000
