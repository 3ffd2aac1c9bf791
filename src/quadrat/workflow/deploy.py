"""Classify the points of one image with a stored classifier: the deploy API's work unit.

``quadrat classify`` scores points of images already in a source, from stored features.
A deploy job brings new images: each is decoded once, its points cut into patches exactly
as extraction cuts them (:func:`quadrat.patches.crop_patches`), the features computed by
the extractor the classifier was trained on (rebuilt from its stored record, and refused
when the weights file it needs is absent or gives other features), then scored.

The estimator and extractor are loaded once per classifier in a process and kept
(:data:`_CACHE`): a worker classifies many images with few classifiers.

:func:`answer_points` adds hierarchical answers (docs/hierarchy.md) to classified points,
for a server configured to give them; by default nothing here changes CoralNet's result.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from quadrat.errors import InputError, PointOutsideImageError, WeightsError
from quadrat.store import jobs

if TYPE_CHECKING:
    from quadrat.extractors import Extractor
    from quadrat.labels.answers import LabelTree
    from quadrat.store.project import Store
    from quadrat.workflow.project import Project

#: Classifications reported per point (CoralNet's ``NBR_SCORES_PER_ANNOTATION``).
TOP_K = 5


@dataclass(frozen=True)
class LoadedClassifier:
    """A classifier ready to score patches: estimator, extractor and label facts."""

    classifier_id: int
    estimator: Any
    extractor: Extractor
    #: Round features to the stored precision, so scores match ``quadrat classify``'s.
    feature_dtype: str | None
    #: ``Label.id`` -> ``(label_id, label_name, label_code)``.
    labels: dict[int, tuple[int, str, str]]


_CACHE: dict[tuple[str, int], LoadedClassifier] = {}
_TREES: dict[tuple[str, int, str], LabelTree] = {}
_CACHE_LOCK = threading.Lock()


def _store(project_or_store: Project | Store) -> Store:
    inner = getattr(project_or_store, "store", None)
    return inner if inner is not None else project_or_store  # type: ignore[return-value]


def rebuild_extractor(name: str, config: dict[str, Any], key: str) -> Extractor:
    """The extractor a stored record describes, checked to give the same features (key).

    A CNN needs its weights file where the record says it was; an absent file is a
    :class:`~quadrat.errors.WeightsError` naming the file and its SHA-256, so the server's
    operator knows which file to copy there.
    """
    from quadrat.extractors import create_extractor
    from quadrat.extractors.registry import BACKBONE_SUFFIXES, EXTRACTORS

    weights = config.get("weights")
    sha = config.get("weights_sha256")
    if weights and not Path(weights).is_file():
        raise WeightsError(
            f"extractor {key!r} needs its weights file {weights} (sha256 {sha}), which is "
            "not on this machine; copy that file there to deploy this classifier",
            path=weights,
            value=sha,
        )
    if weights and name not in EXTRACTORS and Path(weights).suffix in BACKBONE_SUFFIXES:
        extractor = create_extractor(str(weights))  # a pretrained backbone file names itself
    else:
        random = not weights and "@random-" in key
        extractor = create_extractor(name, weights, random_weights=random)
    if extractor.key != key:
        raise WeightsError(
            f"the extractor rebuilt from its record gives features {extractor.key!r}, but the "
            f"classifier was trained on {key!r}; its weights file changed",
            path=weights,
            value=key,
        )
    return extractor


def load_classifier(project_or_store: Project | Store, classifier_id: int) -> LoadedClassifier:
    """The classifier ready to deploy, loaded once per process and classifier id."""
    from quadrat.classifiers.serialize import loads_estimator

    store = _store(project_or_store)
    cache_key = (str(store.url), int(classifier_id))
    with _CACHE_LOCK:
        loaded = _CACHE.get(cache_key)
        if loaded is not None:
            return loaded
        with store.session() as session:
            model = jobs.deploy_model(session, int(classifier_id))
        estimator = loads_estimator(model.model)
        extractor = rebuild_extractor(
            model.extractor_name, model.extractor_config, model.extractor_key
        )
        loaded = LoadedClassifier(
            classifier_id=model.classifier_id,
            estimator=estimator,
            extractor=extractor,
            feature_dtype=model.feature_dtype,
            labels=model.labels,
        )
        _CACHE[cache_key] = loaded
        return loaded


def forget_classifiers() -> None:
    """Empty the per-process cache (a classifier replaced under the same id, tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _TREES.clear()


def label_tree(
    project_or_store: Project | Store, classifier_id: int, hierarchy: str | Path | None = None
) -> LabelTree:
    """The label tree of a classifier's labelset (``hierarchy``: see
    :func:`quadrat.labels.answers.load_label_tree`), checked to place every label the
    classifier scores, kept per process like the classifier."""
    from quadrat.labels.answers import load_label_tree
    from quadrat.store import queries

    store = _store(project_or_store)
    key = (str(store.url), int(classifier_id), str(hierarchy or ""))
    with _CACHE_LOCK:
        if key in _TREES:
            return _TREES[key]
    loaded = load_classifier(store, classifier_id)
    with store.session() as session:
        model = jobs.deploy_model(session, int(classifier_id))
        labelset = queries.labelset_table(session, model.source_id)
    tree = load_label_tree(hierarchy, labelset)
    for label in np.asarray(loaded.estimator.classes_).tolist():
        tree.node_of(loaded.labels.get(int(label), (0, "", str(label)))[2])
    with _CACHE_LOCK:
        _TREES[key] = tree
    return tree


def answer_points(
    project_or_store: Project | Store,
    classifier_id: int,
    ranked: Sequence[Sequence[dict[str, Any]]],
    threshold: float,
    hierarchy: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Each point of :func:`classify_points` as ``{"classifications": [...], "answer":
    {"label", "level", "score"}}``: its hierarchical answer from its top-5 scores (the
    deepest node of the tree whose summed scores reach ``threshold``; ``label`` None and
    level ``none`` when no node does). ``classifications`` is unchanged.
    """
    from quadrat.labels.answers import NONE_LEVEL, answer_top_k, check_threshold

    threshold = check_threshold(threshold)
    tree = label_tree(project_or_store, classifier_id, hierarchy)
    width = max((len(r) for r in ranked), default=0)
    codes = np.full((len(ranked), width), None, dtype=object)
    scores = np.zeros((len(ranked), width), dtype=np.float64)
    for i, point in enumerate(ranked):
        for k, item in enumerate(point):
            codes[i, k], scores[i, k] = str(item["label_code"]), float(item["score"])
    found = answer_top_k(codes, scores, tree, threshold)
    return [
        {
            "classifications": list(point),
            "answer": {
                "label": None if level == NONE_LEVEL else str(name),
                "level": str(level),
                "score": float(score),
            },
        }
        for point, name, level, score in zip(
            ranked, found.name, found.level, found.score, strict=True
        )
    ]


def check_points(points: Sequence[tuple[int, int]], height: int, width: int) -> None:
    """CoralNet's per-image error for the first point outside the image, row checked first."""
    for row, column in points:
        if not 0 <= row < height:
            raise PointOutsideImageError(
                f"Row value {row} falls outside this image's valid range of 0-{height - 1}.",
                value=(row, column),
            )
        if not 0 <= column < width:
            raise PointOutsideImageError(
                f"Column value {column} falls outside this image's valid range of 0-{width - 1}.",
                value=(row, column),
            )


def classify_points(
    project_or_store: Project | Store,
    classifier_id: int,
    image: np.ndarray,
    points: Sequence[tuple[int, int]],
) -> list[list[dict[str, Any]]]:
    """Per point, its top ``min(5, n_labels)`` classifications, best first.

    Each is ``{"label_id", "label_name", "label_code", "score"}`` with ``score`` a
    probability (0-1). ``image`` is (H, W, 3) uint8 RGB as stored (no EXIF rotation).
    """
    from quadrat.classifiers.metrics import top_k
    from quadrat.patches import crop_patches

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}",
            value=image.shape,
            param="image",
        )
    height, width = image.shape[:2]
    check_points(points, height, width)
    if not points:
        return []
    loaded = load_classifier(project_or_store, classifier_id)
    rows = np.fromiter((p[0] for p in points), dtype=np.int64, count=len(points))
    cols = np.fromiter((p[1] for p in points), dtype=np.int64, count=len(points))
    features = loaded.extractor.extract(crop_patches(image, rows, cols))
    if loaded.feature_dtype == "float16":
        features = features.astype(np.float16)
    proba = loaded.estimator.predict_proba(features)
    labels, scores = top_k(proba, np.asarray(loaded.estimator.classes_), k=TOP_K)
    out: list[list[dict[str, Any]]] = []
    for point_labels, point_scores in zip(labels.tolist(), scores.tolist(), strict=True):
        ranked = []
        for label, score in zip(point_labels, point_scores, strict=True):
            label_id, name, code = loaded.labels.get(int(label), (int(label), str(label), ""))
            ranked.append(
                {
                    "label_id": label_id,
                    "label_name": name,
                    "label_code": code,
                    "score": float(score),
                }
            )
        out.append(ranked)
    return out


__all__ = [
    "TOP_K",
    "LoadedClassifier",
    "answer_points",
    "check_points",
    "classify_points",
    "forget_classifiers",
    "label_tree",
    "load_classifier",
    "rebuild_extractor",
]
