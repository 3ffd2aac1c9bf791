"""Run one deploy job: every pending image to a result or a one-line error, then done.

Idempotent by construction: each image's outcome is committed on its own as soon as it is
known, and a run only looks at images still pending. A job started again after a crash
(the server killed, a worker OOM-killed) keeps every image already done and carries on.
A job that keeps killing its worker would loop for ever; :data:`MAX_JOB_ATTEMPTS` caps
the starts, after which its pending images fail with a line that says so.

A server configured with a ``hierarchical_threshold`` (and optionally a ``hierarchy``
file) stores each point as ``{"classifications": [...], "answer": {...}}``
(:func:`quadrat.workflow.deploy.answer_points`, docs/hierarchy.md); without it (the
default) a point is its classifications only, CoralNet's result exactly.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from quadrat.errors import (
    FetchError,
    ImageError,
    LimitError,
    PointOutsideImageError,
    QuadratError,
)
from quadrat.store import jobs

if TYPE_CHECKING:
    from quadrat.service.settings import ServiceSettings
    from quadrat.store.project import Store

log = logging.getLogger(__name__)

#: Starts of one job before its pending images are failed instead of tried again: a job
#: whose worker died (killed, out of memory) this many times would only kill the next one.
MAX_JOB_ATTEMPTS = 3


def error_line(exc: BaseException, url: str) -> str:
    """The one line a failed image reports (CoralNet's ``errors: [...]``)."""
    if isinstance(exc, FetchError):
        return f"Failed to download from the URL {url!r}: {exc.message}"
    if isinstance(exc, PointOutsideImageError):
        return exc.message
    if isinstance(exc, LimitError):
        return f"Image too large: {exc.message.split('; raise it')[0]}"
    if isinstance(exc, ImageError):
        return f"Cannot decode the image: {exc.message}"
    if isinstance(exc, QuadratError):
        return exc.message or str(exc)
    return f"Internal error: {type(exc).__name__}: {exc}"


def run_job(
    store: Store,
    settings: ServiceSettings,
    job_id: int,
    *,
    stop: threading.Event | None = None,
) -> bool:
    """Classify the job's pending images in request order; True once the job is done.

    False when ``stop`` was set between two images (the job stays unfinished, to be queued
    again). An image's failure is its own (one line in the result); a job whose
    classifier cannot be loaded fails all its pending images with that reason.
    """
    from quadrat.service.fetch import load_image
    from quadrat.workflow.deploy import answer_points, classify_points, label_tree, load_classifier

    with store.session() as session:
        job = jobs.find_job(session, job_id)
        if job is None or job.finished:
            return True
        attempt = jobs.start_job(session, job_id)
    if attempt > MAX_JOB_ATTEMPTS:
        log.warning("deploy job %s: started %s times; failing its pending images", job_id, attempt)
        _fail_rest(
            store,
            job_id,
            f"Not classified: the job was started {attempt - 1} times and its worker stopped "
            f"each time before this image (at most MAX_JOB_ATTEMPTS = {MAX_JOB_ATTEMPTS})",
        )
        return True
    if job.classifier_id is None:
        _fail_rest(store, job_id, "The classifier of this job no longer exists")
        return True
    threshold = getattr(settings, "hierarchical_threshold", None)
    hierarchy = getattr(settings, "hierarchy", None)
    try:
        load_classifier(store, job.classifier_id)
        if threshold is not None:  # a tree that leaves out a label fails here, not per image
            label_tree(store, job.classifier_id, hierarchy)
    except (QuadratError, ImportError) as exc:
        log.warning("deploy job %s: classifier %s: %s", job_id, job.classifier_id, exc)
        reason = exc.message if isinstance(exc, QuadratError) else str(exc)
        _fail_rest(store, job_id, f"The classifier cannot be used: {reason}")
        return True

    with store.session() as session:
        pending = jobs.job_images(session, job_id, pending_only=True)
    for image in pending:
        if stop is not None and stop.is_set():
            return False
        try:
            pixels = load_image(image.url, settings)
            result: list[Any] = classify_points(store, job.classifier_id, pixels, image.points)
            if threshold is not None:
                result = answer_points(store, job.classifier_id, result, threshold, hierarchy)
        except (QuadratError, OSError) as exc:
            error: str | None = error_line(exc, image.url)
        except Exception as exc:  # one bad image must not stop the others
            log.exception("deploy job %s: image %s", job_id, image.position)
            error = error_line(exc, image.url)
        else:
            error = None
        with store.session() as session:
            if error is None:
                # Per point in request order, its classifications top first (the schema's
                # DeployImage.result); the API zips them with the points it returns.
                jobs.set_image_result(session, image.id, result)
            else:
                jobs.set_image_error(session, image.id, error)
    with store.session() as session:
        jobs.fail_pending_images(session, job_id, "Not classified (the job ended without it)")
        jobs.finish_job(session, job_id)
    return True


def _fail_rest(store: Store, job_id: int, reason: str) -> None:
    with store.session() as session:
        jobs.fail_pending_images(session, job_id, reason)
        jobs.finish_job(session, job_id)


__all__ = ["MAX_JOB_ATTEMPTS", "error_line", "run_job"]
