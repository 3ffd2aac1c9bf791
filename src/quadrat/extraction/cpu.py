"""The CPU runner: decode and crop on worker threads, batch patches across images.

Pillow's decoder and numpy's copies release the GIL, so ``workers`` threads decode the
next images while the network runs on the current batch. Patches of several images go
through the network together, so small images (or few points an image) still fill whole
batches. Memory is bounded, whatever the number of images: at most ``prefetch`` images
are being decoded or wait as cropped patches (a decoded image is dropped as soon as its
points are cropped), plus one flush of about ``batch_size * batches_per_flush`` patches
(more only when one image alone has more points) going through the network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from quadrat.errors import PointOutsideImageError
from quadrat.extraction.jobs import ImageJob, JobResult
from quadrat.io.images import load_rgb
from quadrat.patches import crop_patches

if TYPE_CHECKING:
    from quadrat.extractors.base import Extractor

#: The network runs on about this many of the extractor's batches at once, gathered
#: across images; memory stays bounded by it, not by the number of images.
BATCHES_PER_FLUSH = 8


def job_patches(job: ImageJob) -> np.ndarray:
    """Decode ``job``'s image once and crop all its points: (n, 224, 224, 3) uint8."""
    image = load_rgb(job.path)
    try:
        return crop_patches(image, job.rows, job.cols)
    except PointOutsideImageError as exc:
        raise PointOutsideImageError(
            f"image {job.name!r}: {exc}", path=job.path, value=exc.value
        ) from exc


@dataclass
class CpuRunner:
    """Decode/crop on ``workers`` threads ahead of the extractor; see the module docstring.

    ``prefetch``: images decoded ahead of the network (default ``2 * workers``).
    """

    workers: int = 2
    batches_per_flush: int = BATCHES_PER_FLUSH
    prefetch: int | None = None

    def __call__(self, jobs: Iterable[ImageJob], extractor: Extractor) -> Iterator[JobResult]:
        workers = max(1, self.workers)
        ahead = max(1, self.prefetch if self.prefetch is not None else 2 * workers)
        target = max(1, extractor.batch_size) * max(1, self.batches_per_flush)
        queue = iter(jobs)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            pending: deque[tuple[ImageJob, Future[np.ndarray]]] = deque()

            def refill() -> None:
                while len(pending) < ahead:
                    job = next(queue, None)
                    if job is None:
                        return
                    pending.append((job, pool.submit(job_patches, job)))

            refill()
            buffer: list[tuple[ImageJob, np.ndarray]] = []
            buffered = 0
            while pending:
                job, future = pending.popleft()
                refill()
                patches = future.result()
                buffer.append((job, patches))
                buffered += len(patches)
                if buffered >= target or not pending:
                    yield from _run(extractor, buffer)
                    buffer, buffered = [], 0


def _run(extractor: Extractor, buffer: list[tuple[ImageJob, np.ndarray]]) -> Iterator[JobResult]:
    stacked = buffer[0][1] if len(buffer) == 1 else np.concatenate([p for _, p in buffer])
    features = extractor.extract(stacked)
    offset = 0
    for job, patches in buffer:
        n = len(patches)
        yield job, features[offset : offset + n]
        offset += n
