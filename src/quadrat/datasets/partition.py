"""Train/test partitions for labelled benthic images that respect space, seeded.

Why: neighbouring seafloor images are near copies, so a random split leaks test images
into training. BenthicNet's ``partition_dataset`` (``../shared/specs/benthicnet.md``)
grows a test set per label, puts 50 m exclusion zones around test images and keeps at
least 10 m between train and test. This module re-implements those rules with a seeded
generator (the original's random choice was unseeded) and vectorised look-ups in one
ball tree; :func:`site_grouped_split` is the simpler alternative that holds out whole
sites. Both return the assignment and a class-balance table per split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import GroupShuffleSplit
from sklearn.neighbors import BallTree

from quadrat.datasets.geo import haversine, metres_to_radians, to_radians_xy
from quadrat.errors import InputError

TRAIN, TEST, EXCLUDED = "train", "test", "excluded"
SPLITS = (TRAIN, TEST, EXCLUDED)
IMAGE_KEYS = ("dataset", "site", "image")
SITE_KEYS = ("dataset", "site")


@dataclass(frozen=True)
class PartitionResult:
    """``assignment``: train/test/excluded per input row (same index); ``balance``: per label."""

    assignment: pd.Series
    balance: pd.DataFrame


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", value=list(table.columns))


def _image_ids(table: pd.DataFrame) -> NDArray[np.intp]:
    """One id per image: rows that are points of the same image share a partition."""
    keys = [column for column in IMAGE_KEYS if column in table.columns]
    if "image" not in keys:
        return np.arange(len(table), dtype=np.intp)
    return table.groupby(keys, sort=False, dropna=False).ngroup().to_numpy(dtype=np.intp)


def _clean_labels(table: pd.DataFrame, label_column: str) -> pd.Series:
    labels = table[label_column]
    text = labels.astype("string").str.strip()
    return text.where(text.notna() & (text != ""))


def class_balance(
    labels: pd.Series, assignment: pd.Series, image_ids: NDArray[np.intp] | None = None
) -> pd.DataFrame:
    """Images per label in each split, with fractions; the last row counts all images.

    An image with several points of the same label counts once for that label.
    """
    ids = np.arange(len(labels)) if image_ids is None else image_ids
    frame = pd.DataFrame({"image": ids, "label": labels.to_numpy(), "split": assignment.to_numpy()})
    per_label = frame.dropna(subset=["label"]).drop_duplicates(["image", "label"])
    counts = pd.crosstab(per_label["label"], per_label["split"])
    images = frame.drop_duplicates("image")
    total_row = images["split"].value_counts().rename("(all images)").to_frame().T
    counts = pd.concat([counts, total_row]).fillna(0).astype(int)
    counts = counts.reindex(columns=list(SPLITS), fill_value=0)
    counts.insert(0, "images", counts.sum(axis=1))
    for split in SPLITS:
        counts[f"{split}_fraction"] = (counts[split] / counts["images"].clip(lower=1)).round(4)
    counts.index.name = "label"
    counts.columns.name = None
    return counts


def class_test_target(
    counts: pd.Series, median_share: float = 0.35, largest_share: float = 0.15
) -> int:
    """Test images to aim for per class: min(35% of the median class, 15% of the largest).

    The median is over classes with more than 3 images (all classes if none has).
    """
    if counts.empty:
        return 0
    common = counts[counts > 3]
    median = float(np.median(common if len(common) else counts))
    return int(min(round(median * median_share), round(float(counts.max()) * largest_share)))


def spatial_partition(
    table: pd.DataFrame,
    label_column: str,
    *,
    seed: int = 0,
    min_train: float = 0.5,
    min_test: float = 0.15,
    median_share: float = 0.35,
    largest_share: float = 0.15,
    exclusion_distance: float = 50.0,
    strict_distance: float = 10.0,
) -> PartitionResult:
    """Split images into train / test / excluded, per label, with exclusion zones.

    For each label, rarest first, test images are added until the label reaches its
    target (clipped to between ``min_test`` of the label and ``1 - min_train``): the
    next one is the free image of that label nearest to the test set if one lies within
    ``exclusion_distance``, else a random one (seeded), so test areas stay compact. Free
    images within ``exclusion_distance`` of a test image are excluded, the rest train.
    A label left under ``min_train`` in train gets back its excluded images that lie at
    least ``strict_distance`` from every test image, farthest first. Rows without a label
    or coordinates are excluded.
    """
    _require(table, [label_column, "latitude", "longitude"])
    if not 0 <= min_train <= 1 or not 0 <= min_test <= 1 or min_train + min_test > 1:
        raise InputError(
            "min_train and min_test must be fractions summing to at most 1",
            value=(min_train, min_test),
        )
    if not exclusion_distance >= strict_distance >= 0:
        raise InputError(
            "need exclusion_distance >= strict_distance >= 0",
            value=(exclusion_distance, strict_distance),
        )
    labels = _clean_labels(table, label_column)
    lat = pd.to_numeric(table["latitude"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    lon = pd.to_numeric(table["longitude"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    usable = labels.notna().to_numpy() & ~np.isnan(lat) & ~np.isnan(lon)
    image_ids = _image_ids(table)

    split = np.full(len(table), EXCLUDED, dtype=object)
    if usable.any():
        unit, first_row = _units(image_ids[usable])
        rows = np.flatnonzero(usable)
        unit_lat, unit_lon = lat[rows][first_row], lon[rows][first_row]
        label_codes, label_names = pd.factorize(labels.to_numpy()[usable])
        pairs = np.unique(np.column_stack([unit, label_codes]), axis=0)
        state = _allocate(
            pairs,
            len(first_row),
            len(label_names),
            unit_lat,
            unit_lon,
            rng=np.random.default_rng(seed),
            min_train=min_train,
            min_test=min_test,
            median_share=median_share,
            largest_share=largest_share,
            exclusion_distance=exclusion_distance,
            strict_distance=strict_distance,
        )
        split[rows] = state[unit]
    assignment = pd.Series(split, index=table.index, name="partition")
    return PartitionResult(assignment, class_balance(labels, assignment, image_ids))


def _units(ids: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Dense image numbers (first appearance order) and each image's first row."""
    codes = pd.factorize(ids)[0]
    first = np.unique(codes, return_index=True)[1]
    return codes.astype(np.intp), first.astype(np.intp)


def _allocate(
    pairs: NDArray[np.intp],
    n_units: int,
    n_labels: int,
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    *,
    rng: np.random.Generator,
    min_train: float,
    min_test: float,
    median_share: float,
    largest_share: float,
    exclusion_distance: float,
    strict_distance: float,
) -> NDArray[np.object_]:
    """The greedy test growth, exclusion and train top-up on (image, label) pairs."""
    pair_unit, pair_label = pairs[:, 0], pairs[:, 1]
    per_label = np.bincount(pair_label, minlength=n_labels)
    target = class_test_target(pd.Series(per_label), median_share, largest_share)
    wanted = np.minimum(
        np.maximum(target, np.ceil(min_test * per_label)), np.floor((1 - min_train) * per_label)
    ).astype(int)
    units_of = [pair_unit[pair_label == k] for k in range(n_labels)]
    labels_of = [[] for _ in range(n_units)]  # type: list[list[int]]
    for u, k in zip(pair_unit.tolist(), pair_label.tolist(), strict=True):
        labels_of[u].append(k)

    tree = BallTree(to_radians_xy(lat, lon), metric="haversine")
    radius = metres_to_radians(exclusion_distance)
    is_test = np.zeros(n_units, dtype=bool)
    to_test = np.full(n_units, np.inf)
    in_test = np.zeros(n_labels, dtype=int)
    for k in np.argsort(per_label, kind="stable"):
        while in_test[k] < wanted[k]:
            free = units_of[k][~is_test[units_of[k]]]
            if len(free) == 0:
                break
            near = free[np.isfinite(to_test[free])]
            pick = int(near[np.argmin(to_test[near])]) if len(near) else int(rng.choice(free))
            is_test[pick] = True
            in_test[labels_of[pick]] += 1
            neighbours = tree.query_radius(
                to_radians_xy(lat[pick : pick + 1], lon[pick : pick + 1]), r=radius
            )[0]
            gaps = haversine(lat[pick], lon[pick], lat[neighbours], lon[neighbours])
            to_test[neighbours] = np.minimum(to_test[neighbours], gaps)

    state = np.where(is_test, TEST, np.where(to_test < exclusion_distance, EXCLUDED, TRAIN))
    state = state.astype(object)
    in_train = np.bincount(pair_label[state[pair_unit] == TRAIN], minlength=n_labels)
    needed = np.ceil(min_train * per_label).astype(int)
    for k in np.flatnonzero(in_train < needed):
        spare = units_of[k][
            (state[units_of[k]] == EXCLUDED) & (to_test[units_of[k]] >= strict_distance)
        ]
        for u in spare[np.argsort(-to_test[spare], kind="stable")]:
            if in_train[k] >= needed[k]:
                break
            state[u] = TRAIN
            in_train[labels_of[int(u)]] += 1
    return state


def site_grouped_split(
    table: pd.DataFrame,
    label_column: str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    group_columns: Sequence[str] = SITE_KEYS,
) -> PartitionResult:
    """Hold out whole sites (``test_fraction`` of the sites, seeded): no test image has a
    training neighbour from its own site, at the cost of class balance."""
    _require(table, list(group_columns) + ([label_column] if label_column else []))
    if not 0 < test_fraction < 1:
        raise InputError(
            f"test fraction must be between 0 and 1, not {test_fraction}",
            value=test_fraction,
            param="test_fraction",
        )
    groups = table.groupby(list(group_columns), sort=False, dropna=False).ngroup().to_numpy()
    if len(np.unique(groups)) < 2:
        raise InputError("a site-grouped split needs at least two sites", value=list(group_columns))
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    _, test_rows = next(splitter.split(np.zeros(len(table)), groups=groups))
    split = np.full(len(table), TRAIN, dtype=object)
    split[test_rows] = TEST
    assignment = pd.Series(split, index=table.index, name="partition")
    labels = (
        _clean_labels(table, label_column)
        if label_column
        else pd.Series(pd.NA, index=table.index, dtype="string")
    )
    return PartitionResult(assignment, class_balance(labels, assignment, _image_ids(table)))


def truncate_lineage(labels: pd.Series, depth: int) -> pd.Series:
    """'Biota > Macroalgae > Brown > ...' cut to its first ``depth`` levels.

    Balancing a split on coarser labels keeps rare leaf classes from dominating it.
    Lineages are split by :func:`quadrat.labels.catami.split_path` (the one home of
    path splitting); missing labels stay missing.

    >>> truncate_lineage(pd.Series(["Biota > Algae > Brown", None]), 2).tolist()
    ['Biota > Algae', <NA>]
    """
    from quadrat.labels.catami import split_path

    if depth < 1:
        raise InputError(
            f"label depth must be at least 1, not {depth}", value=depth, param="label_depth"
        )
    text = labels.astype("string")
    cut = [
        pd.NA if pd.isna(value) else " > ".join(split_path(value, display_names=False)[:depth])
        for value in text
    ]
    return pd.Series(cut, index=labels.index, dtype="string", name=labels.name)
