"""Classify step: score every point no person labelled, and alleviate the confident ones.

Each scored point gets its top-5 labels with probabilities and a machine annotation;
at or above the confidence threshold the annotation is ``alleviate`` (auto-accepted, as
CoralNet's alleviation). Points a person labelled (imported or confirmed) are never
touched; machine labels are replaced on every run, in one transaction.

With ``hierarchical_threshold`` the run also answers each point hierarchically
(:mod:`quadrat.labels.answers`, docs/hierarchy.md) from the top-5 scores it stores, and
counts the answers per level; the stored labels and scores are the same either way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from quadrat.errors import StateError
from quadrat.store import queries, writes
from quadrat.store.features import load_features
from quadrat.workflow._common import Progress, check_threshold, no_progress

if TYPE_CHECKING:
    from quadrat.store.queries import ClassifierInfo
    from quadrat.workflow.source import Source


@dataclass
class ClassifySummary:
    """What a classification did; ``points == 0`` means every point had a person's label."""

    classifier_id: int
    points: int = 0
    machine: int = 0
    alleviated: int = 0
    #: Points per hierarchical answer level (``label``, ``group``..., ``none``); empty
    #: unless a ``hierarchical_threshold`` was given.
    answer_levels: dict[str, int] = field(default_factory=dict)


def classify(
    src: Source,
    *,
    threshold: float | None = None,
    classifier_id: int | None = None,
    batch_size: int = 65536,
    progress: Progress | None = None,
    hierarchical_threshold: float | None = None,
    hierarchy: str | Path | None = None,
) -> ClassifySummary:
    """Score every point no person has labelled: top-5 scores, a machine annotation, and
    auto-acceptance (``alleviate``) at or above the confidence threshold.

    ``threshold`` None uses the source's saved threshold (None there: no alleviation).
    ``hierarchical_threshold``: also count each point's hierarchical answer under
    ``hierarchy`` (None: the labelset's functional groups; a CATAMI mapping CSV or a
    BIIGLE label tree JSON) in :attr:`ClassifySummary.answer_levels`.
    """
    from quadrat.classifiers import tensorfile
    from quadrat.labels import answers

    check_threshold(threshold)
    answers.check_pair(hierarchical_threshold, hierarchy)
    tree = None
    if hierarchical_threshold is not None:  # checked before anything is scored or stored
        answers.check_threshold(hierarchical_threshold)
        tree = answers.load_label_tree(hierarchy, src.labelset())
    progress = progress or no_progress
    levels: Counter[str] = Counter()
    with src.project.store.session() as session:
        info = queries.source_by_id(session, src.id)
        record = chosen_classifier(session, src, classifier_id)
        codes = queries.label_codes(session, src.id)
        if threshold is None:
            threshold = info.confidence_threshold
        model = queries.classifier_model(session, record.id)
        tensorfile.refuse_pickles(model)  # before scikit-learn loads: a pickle is refused fast
        from quadrat.classifiers.metrics import top_k
        from quadrat.classifiers.serialize import loads_estimator

        estimator = loads_estimator(model)
        matrix = load_features(session, record.extractor_key, source_id=src.id)
        labelled = queries.human_labelled_point_ids(session, src.id)
        keep = ~np.isin(
            matrix.point_ids, np.fromiter(labelled, dtype=np.int64, count=len(labelled))
        )
        point_ids = matrix.point_ids[keep]
        features = matrix.features[keep]
        summary = ClassifySummary(classifier_id=record.id)
        now = datetime.now(UTC)
        classes = np.asarray(estimator.classes_)
        if tree is not None:  # every label the classifier scores has a place, or say which
            for label in classes.tolist():
                tree.node_of(codes.get(int(label), str(label)))
        for start in range(0, len(point_ids), batch_size):
            ids = point_ids[start : start + batch_size]
            proba = estimator.predict_proba(features[start : start + batch_size])
            labels, scores = top_k(proba, classes, k=5)
            accept = (
                scores[:, 0] >= threshold if threshold is not None else np.zeros(len(ids), bool)
            )
            writes.replace_machine_labels(session, record.id, ids, labels, scores, accept, now)
            summary.points += len(ids)
            summary.alleviated += int(accept.sum())
            summary.machine += int((~accept).sum())
            if tree is not None and hierarchical_threshold is not None:
                named = np.vectorize(lambda i: codes.get(int(i), str(i)), otypes=[object])
                found = answers.answer_top_k(
                    named(labels) if labels.size else labels.astype(object),
                    scores,
                    tree,
                    hierarchical_threshold,
                )
                levels.update(found.level_counts())
            progress("classifying points", summary.points, len(point_ids))
    if tree is not None:
        summary.answer_levels = answers.order_levels(levels)
    return summary


def export_classifier(src: Source, path: str | Path, classifier_id: int | None = None) -> Path:
    """Write a classifier (default: the active one) as a portable file, atomically.

    The file is the stored bytes (safetensors arrays plus JSON, see
    :mod:`quadrat.classifiers.serialize`) with the labelset, extractor and training facts
    another project needs (:mod:`quadrat.workflow.classifiers`), checked to load before
    it is written.
    """
    from quadrat.workflow import classifiers

    return classifiers.export_classifier(src, path, classifier_id)


def chosen_classifier(session: Any, src: Source, classifier_id: int | None) -> ClassifierInfo:
    """Classifier ``classifier_id`` of the source, or its active one (latest accepted).

    ``session``: a store session (SQLAlchemy stays inside ``quadrat.store``).
    """
    if classifier_id is not None:
        return queries.get_classifier(session, src.id, classifier_id)
    record = queries.latest_classifier(session, src.id)
    if record is None:
        raise StateError(
            f"source {src.name!r} has no accepted classifier; train one first",
            param="classifier_id",
        )
    return record
