"""Extract step: features for every point that lacks them, written by the workflow alone.

The Runner protocol (:mod:`quadrat.extraction.jobs`) is the seam: the workflow turns the
store's "points lacking features" into :class:`~quadrat.extraction.ImageJob` objects, a
runner (CPU threads, the GPU pipeline, a Ray cluster) yields ``(job, features)`` in job
order and never touches the database, and a :class:`~quadrat.store.block_writer.BlockWriter`
commits whole images on its own thread. Killing the job loses at most the images in
flight; a rerun skips images whose block covers all their points.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from quadrat.errors import InputError, StateError
from quadrat.store import queries
from quadrat.store.block_writer import BlockWriter
from quadrat.store.features import check_feature_dtype, record_extractor
from quadrat.workflow._common import Progress, no_progress

if TYPE_CHECKING:
    from quadrat.extraction import ImageJob, Runner
    from quadrat.extractors import Extractor
    from quadrat.workflow.source import Source


@dataclass
class ExtractSummary:
    """What an extraction did; ``images_done == 0`` means there was nothing to extract."""

    extractor_key: str
    images_done: int = 0
    images_skipped: int = 0
    points: int = 0
    seconds: float = 0.0

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0


def extract(
    src: Source,
    extractor: Extractor | str,
    dtype: str = "float16",
    workers: int = 2,
    runner: Runner | None = None,
    progress: Progress | None = None,
) -> ExtractSummary:
    """Extract and store features for every point of the source that lacks them.

    ``runner`` computes the features (default: :func:`quadrat.extraction.default_runner`,
    CPU threads or the GPU pipeline by the extractor's device; a Ray runner for a
    cluster); this function alone writes the store.
    """
    from quadrat.extraction import ImageJob, default_runner

    check_feature_dtype(dtype)  # before anything runs, not on the writer thread at the end
    if not isinstance(workers, int) or workers < 1:
        raise InputError(
            f"workers must be at least 1, not {workers!r}", value=workers, param="workers"
        )
    if isinstance(extractor, str):
        from quadrat.extractors import create_extractor

        extractor = create_extractor(extractor)
    progress = progress or no_progress
    key = extractor.key
    with src.project.store.session() as session:
        record_extractor(
            session,
            key,
            extractor.config.name,
            extractor.config.feature_dim,
            dataclasses.asdict(extractor.config),
        )
        counts = queries.point_counts(session, src.id)
        stored = queries.stored_block_sizes(session, src.id, key)
        todo_ids = [i for i, n in counts.items() if stored.get(i) != n]
        todo = queries.image_files(session, todo_ids)
        point_rows = queries.points_of_images(session, todo_ids)
    by_image: dict[int, list[tuple[int, int, int]]] = {}
    for image_id, point_id, row, col in point_rows:
        by_image.setdefault(image_id, []).append((point_id, row, col))

    def jobs() -> Iterator[ImageJob]:
        for image_id, name, path in todo:
            pts = np.asarray(by_image[image_id], dtype=np.int64).reshape(-1, 3)
            yield ImageJob(image_id, name, path, pts[:, 0], pts[:, 1], pts[:, 2])

    summary = ExtractSummary(extractor_key=key, images_skipped=len(counts) - len(todo))
    if not todo:
        return summary
    runner = runner if runner is not None else default_runner(extractor, workers=workers)
    points_of = {image_id: len(points) for image_id, points in by_image.items()}

    def written(image_ids: list[int]) -> None:  # on the writer thread, after each commit
        summary.images_done += len(image_ids)
        summary.points += sum(points_of[i] for i in image_ids)
        progress("extracting features", summary.images_done, len(todo))

    start = time.perf_counter()
    # Blocks are committed on a writer thread, whole images per transaction: the network
    # never waits for the database, and a killed job still leaves whole images only.
    with BlockWriter(src.project.store, key, dtype=dtype, on_written=written) as writer:
        for job, features in runner(jobs(), extractor):
            writer.put(job.image_id, job.point_ids, features)
    summary.seconds = time.perf_counter() - start
    return summary


def extractor_key(src: Source, name_or_key: str | None = None) -> str:
    """The stored extractor key meant: by key, by extractor name, or the only one there is."""
    with src.project.store.session() as session:
        rows = queries.stored_extractors(session, src.id)
    if not rows:
        raise StateError(f"source {src.name!r} has no stored features; extract features first")
    matches = [key for key, name in rows if name_or_key in (None, key, name)]
    if len(matches) == 1:
        return matches[0]
    keys = ", ".join(key for key, _ in rows)
    if not matches:
        raise InputError(
            f"no stored features from {name_or_key!r} (stored: {keys})",
            value=name_or_key,
            param="extractor",
        )
    raise InputError(
        f"several extractors have features here ({keys}); name the one to use",
        param="extractor",
    )
