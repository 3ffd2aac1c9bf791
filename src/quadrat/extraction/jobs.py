"""What an extraction runner is given and what it gives back.

The workflow turns the store's "points lacking features" into :class:`ImageJob` objects; a
runner (CPU threads, the GPU pipeline, a Ray cluster) turns jobs into features and yields
them in job order; the workflow alone writes the feature store. Runners therefore never
touch the database, and any runner gives the same stored result as any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # torch stays unimported until an extractor is built
    from quadrat.extractors.base import Extractor


@dataclass(frozen=True)
class ImageJob:
    """One image and the points to extract in it (row = y, column = x, stored pixels)."""

    image_id: int
    name: str
    path: str
    point_ids: np.ndarray  # int64, (n,)
    rows: np.ndarray  # int64, (n,)
    cols: np.ndarray  # int64, (n,)

    def __len__(self) -> int:
        return len(self.point_ids)


#: One image's features, (n_points, feature_dim) float32, row i for ``job.point_ids[i]``.
JobResult = tuple[ImageJob, np.ndarray]


class Runner(Protocol):
    """Turns jobs into features; yields every job exactly once, in the order given.

    A runner must keep memory bounded by its batch and prefetch sizes, never by the number
    of jobs: it consumes ``jobs`` lazily.
    """

    def __call__(self, jobs: Iterable[ImageJob], extractor: Extractor) -> Iterator[JobResult]: ...
