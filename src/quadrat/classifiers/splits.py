"""Folds of labelled points, grouped by image and stratified by label where possible.

Neighbouring points of one image share lighting, camera and substrate, so a point split
that puts one image on both sides overstates accuracy and miscalibrates scores. Every
split here keeps a group (image) on one side.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from quadrat.errors import TrainingDataError


def fold_splits(
    y: np.ndarray,
    groups: np.ndarray | None,
    n_folds: int,
    random_state: int | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(kept, held_out)`` index pairs for ``n_folds`` folds (fewer with fewer groups).

    Stratified by label where the labels allow it (``StratifiedGroupKFold`` /
    ``StratifiedKFold``), plain ``GroupKFold`` / ``KFold`` otherwise.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    n = y.shape[0]
    placeholder = np.zeros((n, 1), dtype=np.int8)
    _, counts = np.unique(y, return_counts=True)
    with warnings.catch_warnings():
        # "The least populated class has only k members": expected for rare labels.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        if groups is None:
            n_folds = min(n_folds, n)
            if n_folds < 2:
                raise TrainingDataError(f"{n} points: too few to split", value=n)
            splitter: Any = (
                StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
                if counts.max() >= n_folds
                else KFold(n_folds, shuffle=True, random_state=random_state)
            )
            return list(splitter.split(placeholder, y))
        n_groups = np.unique(groups).size
        n_folds = min(n_folds, n_groups)
        if n_folds < 2:
            raise TrainingDataError(
                f"{n_groups} image(s): need at least 2 to split by image", value=n_groups
            )
        if counts.max() >= n_folds:
            splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state)
        else:
            splitter = GroupKFold(n_folds, shuffle=True, random_state=random_state)
        return list(splitter.split(placeholder, y, groups))


def split_indices(
    y: np.ndarray,
    groups: np.ndarray | None,
    n_folds: int,
    random_state: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices: held-out is one of ``n_folds`` folds (see ``fold_splits``).

    The held-out fold is drawn at random: StratifiedGroupKFold fills fold 0 first with the
    most unusual image, so always holding out fold 0 would always hold out that image.
    """
    folds = fold_splits(y, groups, n_folds, random_state)
    seed = None if random_state is None else [random_state, n_folds]
    return folds[int(np.random.default_rng(seed).integers(len(folds)))]
