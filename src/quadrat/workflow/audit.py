"""Audit step: person-given labels that the data disagrees with, and similar patches.

Gathers the source's human labels (imported and confirmed) and their stored features,
and hands them to :mod:`quadrat.classifiers.label_issues`: confident learning on
cross-validated probabilities, and the share of the nearest labelled neighbours that
agree. :func:`similar_points` answers "patches like this one" from the same kind of
index (over every point of the source with features). Nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from quadrat.errors import NotFoundError, StateError, TrainingDataError
from quadrat.store import queries
from quadrat.store.features import load_features

if TYPE_CHECKING:
    import pandas as pd

    from quadrat.workflow.source import Source

AUDIT_COLUMNS = [
    "image",
    "point",
    "row",
    "column",
    "status",
    "given_label",
    "suggested_label",
    "given_proba",
    "agreement",
    "score",
    "point_id",
]
SIMILAR_COLUMNS = ["image", "point", "row", "column", "label", "status", "distance", "point_id"]


def _key(src: Source, session: Any, extractor_key: str | None) -> str:
    """The features to use: as given, else the active classifier's, else the only ones."""
    if extractor_key is None:
        record = queries.latest_classifier(session, src.id)
        if record is not None:
            return record.extractor_key
    return src.extractor_key(extractor_key)


def audit(
    src: Source,
    *,
    extractor_key: str | None = None,
    folds: int = 5,
    k: int = 10,
    seed: int = 0,
    max_agreement: float | None = 0.5,
    all_points: bool = False,
) -> pd.DataFrame:
    """Human labels that cross-validated predictions and neighbours disagree with.

    Confident learning (:func:`quadrat.classifiers.label_issues.confident_learning`) on
    ``folds``-fold out-of-fold probabilities flags a label; ``agreement`` is the share
    of its ``k`` nearest labelled neighbours (standardised features) with the same
    label; a label is flagged when confident learning flags it and ``agreement`` is below
    ``max_agreement`` (None: confident learning alone). Rows are sorted by
    ``score = 1 - (given_proba + agreement) / 2``, highest first. ``all_points``: every
    labelled point with a ``flagged`` column, not only the flagged ones. Needs stored
    features (``extractor_key``: default the active classifier's, else the only stored
    one) and at least ``2 * folds`` labelled points.
    """
    import pandas as pd

    from quadrat.classifiers.label_issues import label_issues

    with src.project.store.session() as session:
        key = _key(src, session, extractor_key)
        labels = queries.human_labels(session, src.id)
        matrix = load_features(session, key, source_id=src.id, dtype="stored")
        table = queries.annotation_table(session, src.id)
        codes = queries.label_codes(session, src.id)
    if labels.empty:
        raise TrainingDataError(
            f"source {src.name!r} has no labelled points to audit", value=0, param="source"
        )
    rows = pd.Index(matrix.point_ids).get_indexer(labels["point_id"])
    if (rows < 0).all():
        raise StateError(
            f"no labelled point of source {src.name!r} has features for {key!r}; "
            "extract features first",
            param="extractor_key",
        )
    labels = labels[rows >= 0].reset_index(drop=True)
    features = matrix.features[rows[rows >= 0]]
    issues = label_issues(
        features,
        labels["label_id"].to_numpy(np.int64),
        folds=folds,
        k=k,
        seed=seed,
        max_agreement=max_agreement,
    )
    where = table.set_index("point_id").loc[labels["point_id"]]
    out = pd.DataFrame(
        {
            "image": where["image"].to_numpy(),
            "point": where["number"].to_numpy(),
            "row": where["row"].to_numpy(),
            "column": where["column"].to_numpy(),
            "status": where["status"].to_numpy(),
            "given_label": [codes.get(int(i)) for i in labels["label_id"]],
            "suggested_label": [codes.get(int(i)) for i in issues.suggested],
            "given_proba": issues.given_proba,
            "agreement": issues.agreement,
            "score": issues.score,
            "point_id": labels["point_id"].to_numpy(),
            "flagged": issues.flagged,
        }
    )
    out = out.sort_values(["score", "point_id"], ascending=[False, True], kind="stable")
    if not all_points:
        out = out[out["flagged"]][AUDIT_COLUMNS]
    return out.reset_index(drop=True)


def similar_points(
    src: Source, point_id: int, k: int = 12, *, extractor_key: str | None = None
) -> pd.DataFrame:
    """The ``k`` points of the source whose features are nearest to ``point_id``'s.

    For a review grid ("patches like this one"): every point with stored features is a
    candidate, labelled or not; the point itself is left out. Sorted by ``distance``
    (Euclidean on standardised features, :class:`~quadrat.classifiers.label_issues.
    FeatureIndex`).
    """
    import pandas as pd

    from quadrat.classifiers.label_issues import FeatureIndex

    with src.project.store.session() as session:
        key = _key(src, session, extractor_key)
        matrix = load_features(session, key, source_id=src.id)
        table = queries.annotation_table(session, src.id)
    row = np.flatnonzero(matrix.point_ids == int(point_id))
    if len(row) == 0:
        raise NotFoundError(
            f"point {point_id} of source {src.name!r} has no stored features for {key!r}",
            value=point_id,
            param="point_id",
        )
    index = FeatureIndex(matrix.features, matrix.point_ids)
    distances, ids = index.query(matrix.features[row[0]], k + 1)
    keep = ids[0] != int(point_id)
    ids, distances = ids[0][keep][:k], distances[0][keep][:k]
    where = table.set_index("point_id").loc[ids]
    return pd.DataFrame(
        {
            "image": where["image"].to_numpy(),
            "point": where["number"].to_numpy(),
            "row": where["row"].to_numpy(),
            "column": where["column"].to_numpy(),
            "label": where["label"].to_numpy(),
            "status": where["status"].to_numpy(),
            "distance": distances,
            "point_id": ids,
        },
        columns=SIMILAR_COLUMNS,
    )
