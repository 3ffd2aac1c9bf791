"""Deploy jobs of ``quadrat serve``: every read and write of their tables.

A job is a row in ``deploy_jobs`` with one ``deploy_images`` row per requested image, in
request order. The queue (:mod:`quadrat.service.queue`) carries only job ids; the state of
a job lives here, so a server killed mid-job loses nothing: on restart every unfinished job
is found with :func:`unfinished_job_ids` and run again, and images already done are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from quadrat.errors import NotFoundError
from quadrat.store.schema import (
    ClassifierRecord,
    DeployImage,
    DeployImageStatus,
    DeployJob,
    ExtractorRecord,
    FeatureBlock,
    JobStatus,
    Label,
)


@dataclass(frozen=True)
class JobInfo:
    """A job's state and counts (CoralNet's ``successes``, ``failures``, ``total``)."""

    id: int
    user_id: int
    classifier_id: int | None
    status: JobStatus
    attempts: int
    successes: int
    failures: int
    total: int
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status == JobStatus.DONE


@dataclass(frozen=True)
class JobImage:
    """One image of a job: what was asked, and its result or error once finished."""

    id: int
    position: int
    url: str
    points: list[tuple[int, int]]
    status: DeployImageStatus
    result: list[Any] | None
    error: str | None


def create_job(
    session: Session,
    user_id: int,
    classifier_id: int,
    images: Sequence[tuple[str, Sequence[tuple[int, int]]]],
) -> int:
    """A new pending job: ``images`` is ``[(url, [(row, column), ...]), ...]``."""
    job = DeployJob(user_id=user_id, classifier_id=classifier_id, status=JobStatus.PENDING)
    session.add(job)
    session.flush()
    session.add_all(
        DeployImage(
            job_id=job.id,
            position=i,
            url=url,
            points=[[int(r), int(c)] for r, c in points],
            status=DeployImageStatus.PENDING,
        )
        for i, (url, points) in enumerate(images)
    )
    session.flush()
    return job.id


def _counts(session: Session, job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    rows = session.execute(
        select(DeployImage.job_id, DeployImage.status, func.count())
        .where(DeployImage.job_id.in_(job_ids))
        .group_by(DeployImage.job_id, DeployImage.status)
    ).all()
    counts: dict[int, dict[str, int]] = {j: {} for j in job_ids}
    for job_id, status, n in rows:
        counts[int(job_id)][str(DeployImageStatus(status))] = int(n)
    return counts


def _info(job: DeployJob, counts: dict[str, int]) -> JobInfo:
    successes = counts.get(DeployImageStatus.DONE, 0)
    failures = counts.get(DeployImageStatus.FAILED, 0)
    return JobInfo(
        id=job.id,
        user_id=job.user_id,
        classifier_id=job.classifier_id,
        status=JobStatus(job.status),
        attempts=job.attempts,
        successes=successes,
        failures=failures,
        total=successes + failures + counts.get(DeployImageStatus.PENDING, 0),
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def get_job(session: Session, job_id: int) -> JobInfo:
    job = session.get(DeployJob, job_id)
    if job is None:
        raise NotFoundError(f"no deploy job {job_id}", value=job_id, param="job_id")
    return _info(job, _counts(session, [job_id])[job_id])


def find_job(session: Session, job_id: int) -> JobInfo | None:
    job = session.get(DeployJob, job_id)
    return None if job is None else _info(job, _counts(session, [job_id])[job_id])


def active_job_ids(session: Session, user_id: int) -> list[int]:
    """The user's unfinished jobs, oldest first."""
    return [
        int(i)
        for i in session.scalars(
            select(DeployJob.id)
            .where(DeployJob.user_id == user_id, DeployJob.status != JobStatus.DONE)
            .order_by(DeployJob.id)
        )
    ]


def recently_completed_job_ids(session: Session, user_id: int, limit: int) -> list[int]:
    """The user's finished jobs, newest first, at most ``limit``."""
    return [
        int(i)
        for i in session.scalars(
            select(DeployJob.id)
            .where(DeployJob.user_id == user_id, DeployJob.status == JobStatus.DONE)
            .order_by(DeployJob.finished_at.desc(), DeployJob.id.desc())
            .limit(limit)
        )
    ]


def unfinished_job_ids(session: Session) -> list[int]:
    """Every job not done, oldest first (what a restarted server queues again)."""
    return [
        int(i)
        for i in session.scalars(
            select(DeployJob.id).where(DeployJob.status != JobStatus.DONE).order_by(DeployJob.id)
        )
    ]


def job_images(session: Session, job_id: int, *, pending_only: bool = False) -> list[JobImage]:
    """The job's images in request order (only those still pending, if asked)."""
    query = select(DeployImage).where(DeployImage.job_id == job_id)
    if pending_only:
        query = query.where(DeployImage.status == DeployImageStatus.PENDING)
    return [
        JobImage(
            id=image.id,
            position=image.position,
            url=image.url,
            points=[(int(r), int(c)) for r, c in image.points],
            status=DeployImageStatus(image.status),
            result=image.result,
            error=image.error,
        )
        for image in session.scalars(query.order_by(DeployImage.position))
    ]


def start_job(session: Session, job_id: int) -> int:
    """Mark the job in progress (one more attempt); returns the attempt number."""
    job = session.get(DeployJob, job_id)
    if job is None:
        raise NotFoundError(f"no deploy job {job_id}", value=job_id, param="job_id")
    job.attempts = (job.attempts or 0) + 1
    if job.status == JobStatus.PENDING:
        job.status = JobStatus.IN_PROGRESS
        job.started_at = datetime.now(UTC)
    return job.attempts


def set_image_result(session: Session, image_id: int, result: list[Any]) -> None:
    """An image classified: its points' classifications, top first."""
    session.execute(
        update(DeployImage)
        .where(DeployImage.id == image_id)
        .values(status=DeployImageStatus.DONE, result=result, error=None)
    )
    _mark_in_progress(session, image_id)


def set_image_error(session: Session, image_id: int, error: str) -> None:
    """An image that could not be classified, with one line saying why."""
    line = " ".join(error.split())[:1024]
    session.execute(
        update(DeployImage)
        .where(DeployImage.id == image_id)
        .values(status=DeployImageStatus.FAILED, result=None, error=line)
    )
    _mark_in_progress(session, image_id)


def _mark_in_progress(session: Session, image_id: int) -> None:
    job_id = session.scalar(select(DeployImage.job_id).where(DeployImage.id == image_id))
    session.execute(
        update(DeployJob)
        .where(DeployJob.id == job_id, DeployJob.status == JobStatus.PENDING)
        .values(status=JobStatus.IN_PROGRESS, started_at=datetime.now(UTC))
    )


def fail_pending_images(session: Session, job_id: int, error: str) -> int:
    """Fail every image of the job still pending (a job that cannot run any more)."""
    result = session.execute(
        update(DeployImage)
        .where(DeployImage.job_id == job_id, DeployImage.status == DeployImageStatus.PENDING)
        .values(status=DeployImageStatus.FAILED, error=" ".join(error.split())[:1024])
    )
    return int(getattr(result, "rowcount", 0) or 0)


def finish_job(session: Session, job_id: int) -> None:
    """Mark the job done (its images must all be done or failed)."""
    session.execute(
        update(DeployJob)
        .where(DeployJob.id == job_id)
        .values(status=JobStatus.DONE, finished_at=datetime.now(UTC))
    )


# ----------------------------------------------------------------------- retention

#: Jobs deleted in one transaction by :func:`delete_finished_jobs` (short write locks).
DELETE_BATCH = 200


def delete_finished_jobs(
    session: Session, finished_before: datetime, *, limit: int = DELETE_BATCH
) -> list[int]:
    """Delete up to ``limit`` jobs finished before ``finished_before``, with their images
    and results; returns their ids, oldest first.

    Only finished jobs: a pending or running one is never removed, however old. Both
    deletes run in the caller's transaction, so a job goes with all its images or not at
    all; call again until fewer than ``limit`` come back. Polling a deleted job then
    finds no job (the API's 404), as CoralNet after its ``JOB_MAX_DAYS``.
    """
    ids = [
        int(i)
        for i in session.scalars(
            select(DeployJob.id)
            .where(DeployJob.status == JobStatus.DONE, DeployJob.finished_at < finished_before)
            .order_by(DeployJob.id)
            .limit(limit)
        )
    ]
    if ids:
        session.execute(delete(DeployImage).where(DeployImage.job_id.in_(ids)))
        session.execute(
            delete(DeployJob).where(DeployJob.id.in_(ids), DeployJob.status == JobStatus.DONE)
        )
    return ids


def image_names_in_use(session: Session, prefix: str) -> set[str]:
    """The image names starting with ``prefix`` (``upload:``) that unfinished jobs name."""
    return {
        str(url)
        for url in session.scalars(
            select(DeployImage.url)
            .distinct()
            .join(DeployJob, DeployJob.id == DeployImage.job_id)
            .where(DeployJob.status != JobStatus.DONE, DeployImage.url.startswith(prefix))
        )
    }


def user_image_names(session: Session, user_id: int, prefix: str) -> set[str]:
    """The image names starting with ``prefix`` that any stored job of the user names
    (what the user's uploads hold on the server, finished jobs included)."""
    return {
        str(url)
        for url in session.scalars(
            select(DeployImage.url)
            .distinct()
            .join(DeployJob, DeployJob.id == DeployImage.job_id)
            .where(DeployJob.user_id == user_id, DeployImage.url.startswith(prefix))
        )
    }


# ----------------------------------------------------------------------- what a worker reads


@dataclass(frozen=True)
class DeployModel:
    """Everything a worker needs to classify with one classifier, read in one transaction.

    ``labels`` maps each of the source's ``Label.id`` (the estimator's classes) to
    ``(label_id, label_name, label_code)`` as the deploy API reports them: ``label_id`` is
    CoralNet's global id when the labelset came from CoralNet, else quadrat's own.
    """

    classifier_id: int
    source_id: int
    extractor_key: str
    extractor_name: str
    extractor_config: dict[str, Any]
    #: The stored features' precision (``float16``/``float32``); None when none are stored.
    feature_dtype: str | None
    model: bytes
    labels: dict[int, tuple[int, str, str]]


def deploy_model(session: Session, classifier_id: int) -> DeployModel:
    """The classifier's estimator bytes, extractor record and labels (NotFoundError if gone)."""
    record = session.get(ClassifierRecord, classifier_id)
    if record is None:
        raise NotFoundError(
            f"no classifier {classifier_id}", value=classifier_id, param="classifier_id"
        )
    extractor = session.get(ExtractorRecord, record.extractor_key)
    if extractor is None:
        raise NotFoundError(
            f"classifier {classifier_id}: its extractor {record.extractor_key!r} is not recorded",
            value=record.extractor_key,
            param="classifier_id",
        )
    # An imported classifier says what its training features were stored as (its project
    # may hold none); otherwise the precision of the features stored here.
    dtype = (record.hyperparameters or {}).get("feature_dtype") or session.scalar(
        select(FeatureBlock.dtype)
        .where(FeatureBlock.extractor_key == record.extractor_key)
        .limit(1)
    )
    labels = {
        int(i): (int(coralnet_id if coralnet_id is not None else i), str(name), str(code))
        for i, name, code, coralnet_id in session.execute(
            select(Label.id, Label.name, Label.short_code, Label.coralnet_id).where(
                Label.source_id == record.source_id
            )
        )
    }
    return DeployModel(
        classifier_id=record.id,
        source_id=record.source_id,
        extractor_key=record.extractor_key,
        extractor_name=extractor.name,
        extractor_config=dict(extractor.config or {}),
        feature_dtype=None if dtype is None else str(dtype),
        model=bytes(record.model),
        labels=labels,
    )
