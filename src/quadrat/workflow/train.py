"""Train step: a classifier on the source's confirmed points, when the policy calls for one.

CoralNet's rules (:class:`~quadrat.classifiers.policy.TrainingPolicy`): the first
classifier at 20 confirmed images, the next when the count has grown enough, and a new
classifier replaces the active one only if it is better on validation. The policy runs
per extractor: switching extractors starts a new series of classifiers, as CoralNet
resets a source's classifiers when its extractor changes. Every classifier trained is
recorded (accepted or not), so the history shows what happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quadrat._util import jsonable
from quadrat.errors import InputError, TrainingDataError
from quadrat.store import queries, writes

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quadrat.classifiers.policy import TrainingPolicy
    from quadrat.store.queries import ClassifierInfo
    from quadrat.workflow.source import Source

KINDS = ("mlp", "lr")


@dataclass
class TrainOutcome:
    """A training attempt. ``trained=False``: the policy said not yet (``message`` says
    when); ``accepted``: the new classifier became the active one."""

    trained: bool
    message: str
    classifier_id: int | None = None
    accepted: bool = False
    accuracy: float | None = None
    n_train: int = 0
    n_val: int = 0
    train_seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


def _finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class PolicyProgress:
    """Where a source stands in CoralNet's retraining policy."""

    #: Whether the policy trains a classifier now.
    due: bool
    confirmed_images: int
    #: Confirmed images at which the next classifier is trained.
    next_at: int

    @property
    def message(self) -> str:
        return (
            f"{self.confirmed_images} confirmed images; the next classifier is trained at "
            f"{self.next_at}"
        )


def _policy_state(
    session: Session, source_id: int, key: str, policy: TrainingPolicy
) -> tuple[list[int], ClassifierInfo | None, PolicyProgress]:
    """The confirmed images, the classifier the policy counts from, and the progress."""
    from quadrat.classifiers.serialize import is_unsafe_format

    images = queries.confirmed_image_ids(session, source_id)
    previous = queries.latest_classifier(session, source_id, extractor_key=key)
    if previous is not None and is_unsafe_format(queries.classifier_model(session, previous.id)):
        previous = None  # stored by an older quadrat as a pickle: never used, replace it
    last_count = previous.n_images if previous is not None else None
    need = policy.min_images if last_count is None else policy.next_count(last_count)
    due = policy.should_train(len(images), last_count)
    return images, previous, PolicyProgress(due, len(images), need)


def policy_progress(
    src: Source, extractor_key: str | None = None, policy: TrainingPolicy | None = None
) -> PolicyProgress:
    """Whether the policy trains now, and at how many confirmed images (reads only)."""
    from quadrat.classifiers.policy import TrainingPolicy

    key = src.extractor_key(extractor_key)
    with src.project.store.session() as session:
        return _policy_state(session, src.id, key, policy or TrainingPolicy())[2]


def train(
    src: Source,
    extractor_key: str | None = None,
    *,
    kind: str = "mlp",
    force: bool = False,
    policy: TrainingPolicy | None = None,
    seed: int = 0,
    device: str | None = None,
) -> TrainOutcome:
    """Train a classifier if the source's policy calls for one, and keep it if it is better.

    ``extractor_key`` defaults to the only extractor with stored features (see
    :meth:`Source.extractor_key`). ``device`` ("auto", "cpu", "cuda") trains with
    PyTorch there; None with scikit-learn.
    """
    from quadrat.classifiers.metrics import alleviate_curve, mean_scores
    from quadrat.classifiers.policy import TrainingPolicy
    from quadrat.classifiers.serialize import dumps_estimator
    from quadrat.classifiers.training import train_classifier

    if kind not in KINDS:
        raise InputError(f"kind must be mlp or lr, not {kind!r}", value=kind, param="kind")
    key = src.extractor_key(extractor_key)
    policy = policy or TrainingPolicy()
    with src.project.store.session() as session:
        images, previous, progress = _policy_state(session, src.id, key, policy)
        if not force and not progress.due:
            return TrainOutcome(trained=False, message=progress.message)
        if len(images) < 2:
            raise TrainingDataError(
                f"source {src.name!r} has {len(images)} confirmed images; need at least 2",
                value=len(images),
            )
        X, y, groups = queries.training_data(session, src.id, key, images)
        prev_acc = previous.accuracy if previous is not None else None
    result = train_classifier(
        X,
        y,
        groups=groups,
        kind="lr" if kind == "lr" else "mlp",
        random_state=seed,
        previous_accuracy=prev_acc,
        policy=policy,
        device=device,
    )
    metrics = dict(result.metrics)
    curve = alleviate_curve(result.val_proba, result.val_true, result.estimator.classes_)
    metrics["alleviate_curve"] = curve.to_dict(orient="list")
    # For probabilistic adjusted cover (quadrat.reports.quantify): E[scores | true label].
    metrics["validation_scores"] = mean_scores(
        result.val_proba, result.val_true, result.estimator.classes_
    )
    accuracy = _finite_or_none(result.metrics["accuracy"])
    with src.project.store.session() as session:
        record_id = writes.add_classifier(
            session,
            source_id=src.id,
            extractor_key=key,
            kind=kind,
            hyperparameters=jsonable(result.hyperparameters),
            metrics=jsonable(metrics),
            n_images=len(images),
            n_train=result.n_train,
            n_val=result.n_val,
            accuracy=accuracy,
            accepted=result.accepted,
            train_seconds=float(result.train_seconds),
            model=dumps_estimator(
                result.estimator,
                metadata={
                    "extractor_key": key,
                    "kind": kind,
                    "hyperparameters": jsonable(result.hyperparameters),
                    "metrics": jsonable(metrics),
                },
            ),
        )
    if result.accepted:
        verdict = "accepted"
    elif prev_acc is not None:
        verdict = f"rejected (previous accuracy {prev_acc:.3f})"
    else:
        verdict = "rejected (no validation point with a known label)"
    return TrainOutcome(
        trained=True,
        message=f"classifier {record_id}: accuracy {result.metrics['accuracy']:.3f}, {verdict}",
        classifier_id=record_id,
        accepted=result.accepted,
        accuracy=accuracy,
        n_train=result.n_train,
        n_val=result.n_val,
        train_seconds=float(result.train_seconds),
        metrics=metrics,
    )
