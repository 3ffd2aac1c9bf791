"""Suggest step: which unconfirmed points (or images) a person should label next.

The active classifier scores every point no person labelled (imported or confirmed
points are never suggested; machine and alleviated ones are), the acquisition strategy
of :mod:`quadrat.classifiers.acquisition` ranks them, and the diversity step keeps the
batch spread over the stored features. By image, an image's score is the mean over its
unconfirmed points and its features the mean of theirs. Nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from quadrat.errors import InputError, StateError
from quadrat.store import queries
from quadrat.store.features import load_features

if TYPE_CHECKING:
    import pandas as pd

    from quadrat.workflow.source import Source

POINT_COLUMNS = [
    "rank",
    "image",
    "point",
    "row",
    "column",
    "top_label",
    "top_score",
    "margin",
    "entropy",
    "score",
    "point_id",
]
IMAGE_COLUMNS = ["rank", "image", "points", "margin", "entropy", "score", "image_id"]


def suggest(
    src: Source,
    n: int = 20,
    *,
    strategy: str = "margin",
    by: Literal["points", "images"] = "points",
    diversity: bool = True,
    seed: int = 0,
    classifier_id: int | None = None,
) -> pd.DataFrame:
    """The ``n`` unconfirmed points (or images) to label next, most wanted first.

    ``strategy``: ``margin`` (smallest gap between the two top labels), ``entropy``
    (flattest scores) or ``random`` (uniform, from ``seed``; needs no classifier).
    ``diversity``: choose among the ``5 n`` most uncertain by k-center greedy on the
    features, so the batch is not near-duplicates. Columns: see ``POINT_COLUMNS`` and
    ``IMAGE_COLUMNS``; ``margin``/``entropy``/``top_*`` are NaN/None without a classifier.
    An empty frame when every point has a person's label. Points without stored features
    for the classifier's extractor cannot be scored and are left out (extract first).
    """
    import pandas as pd

    from quadrat.classifiers.acquisition import (
        acquisition_scores,
        check_strategy,
        entropy,
        margin,
        select_batch,
    )
    from quadrat.classifiers.serialize import loads_estimator
    from quadrat.workflow.classify import chosen_classifier

    check_strategy(strategy)
    if by not in ("points", "images"):
        raise InputError(f"by must be points or images, not {by!r}", value=by, param="by")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a whole number of at least 1, not {n!r}", value=n, param="n")
    with src.project.store.session() as session:
        table = queries.annotation_table(session, src.id)
        labelled = queries.human_labelled_point_ids(session, src.id)
        candidates = table[~table["point_id"].isin(labelled)].reset_index(drop=True)
        record = None
        if strategy != "random" or classifier_id is not None:
            record = chosen_classifier(session, src, classifier_id)
        elif queries.latest_classifier(session, src.id) is not None:
            record = queries.latest_classifier(session, src.id)
        features = None
        proba = None
        classes = None
        if record is not None:
            estimator = loads_estimator(queries.classifier_model(session, record.id))
            matrix = load_features(session, record.extractor_key, source_id=src.id)
            if len(matrix) == 0:
                raise StateError(
                    f"source {src.name!r} has no stored features for {record.extractor_key!r}; "
                    "extract features first",
                    param="extractor",
                )
            rows = pd.Index(matrix.point_ids).get_indexer(candidates["point_id"])
            if strategy != "random":
                candidates = candidates[rows >= 0].reset_index(drop=True)
                rows = rows[rows >= 0]
            has = rows >= 0
            features = np.full((len(candidates), matrix.features.shape[1]), np.nan, np.float32)
            features[has] = matrix.features[rows[has]]
            proba = np.full((len(candidates), len(estimator.classes_)), np.nan)
            if has.any():
                proba[has] = estimator.predict_proba(features[has])
            classes = np.asarray(estimator.classes_)
        codes = queries.label_codes(session, src.id)
    columns = POINT_COLUMNS if by == "points" else IMAGE_COLUMNS
    if candidates.empty:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(
        {
            "image": candidates["image"],
            "point": candidates["number"],
            "row": candidates["row"],
            "column": candidates["column"],
            "point_id": candidates["point_id"],
            "image_id": candidates["image_id"],
        }
    )
    if proba is not None and classes is not None:
        scored = ~np.isnan(proba).any(axis=1)
        out["margin"] = np.nan
        out["entropy"] = np.nan
        out.loc[scored, "margin"] = margin(proba[scored])
        out.loc[scored, "entropy"] = entropy(proba[scored])
        top = np.where(scored, np.nan_to_num(proba, nan=-1.0).argmax(axis=1), -1)
        out["top_label"] = [codes.get(int(classes[t])) if t >= 0 else None for t in top]
        out["top_score"] = np.where(scored, np.nan_to_num(proba).max(axis=1), np.nan)
    else:
        out["margin"] = out["entropy"] = out["top_score"] = np.nan
        out["top_label"] = None
    if strategy == "random":
        out["score"] = acquisition_scores(None, "random", n=len(out), seed=seed)
    else:
        out["score"] = acquisition_scores(proba, strategy)
    use_features = diversity and strategy != "random" and features is not None
    if by == "images":
        grouped = out.groupby(["image_id", "image"], sort=True)
        images = grouped.agg(
            points=("point_id", "size"),
            margin=("margin", "mean"),
            entropy=("entropy", "mean"),
            score=("score", "mean"),
        ).reset_index()
        image_features = None
        if use_features and features is not None:
            frame = pd.DataFrame(features, index=out["image_id"].to_numpy())
            image_features = frame.groupby(level=0).mean().loc[images["image_id"]].to_numpy()
        picked = select_batch(
            images["score"].to_numpy(),
            n,
            features=image_features,
            diversity=use_features,
        )
        result = images.iloc[picked].reset_index(drop=True)
    else:
        picked = select_batch(
            out["score"].to_numpy(),
            n,
            features=features if use_features else None,
            diversity=use_features,
        )
        result = out.iloc[picked].reset_index(drop=True)
    result["rank"] = np.arange(1, len(result) + 1)
    return result[columns]
