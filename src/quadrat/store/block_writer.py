"""A background writer for feature blocks: the network never waits for the database.

Extraction used to commit each image's block in the thread that drives the network; on a
GPU that capped throughput near 100 images/s. Here a thread takes finished images from a
bounded queue and writes every image that is waiting in one transaction (one DELETE and
one multi-row INSERT). A transaction still holds whole blocks only, so a killed job
leaves whole images or nothing, and a rerun completes the rest.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np

from quadrat.store.features import write_blocks
from quadrat.store.project import Store

#: (image_id, point_ids, features)
Block = tuple[int, np.ndarray, np.ndarray]
_STOP = object()


class BlockWriter:
    """Context manager: ``put`` blocks; they are committed in groups on a thread.

    ``on_written(image_ids)`` runs (on the writer thread) after each commit. At most
    ``max_pending`` blocks wait in memory; ``put`` blocks when the writer falls behind.
    On leaving the context, everything put is written, also when the body raised (so
    the images finished before an error are kept), and a writer error is raised.
    """

    def __init__(
        self,
        store: Store,
        extractor_key: str,
        *,
        dtype: str = "float16",
        max_pending: int = 64,
        max_group: int = 256,
        on_written: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.store = store
        self.extractor_key = extractor_key
        self.dtype = dtype
        self.max_group = max_group
        self.on_written = on_written
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, max_pending))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="block-writer", daemon=True)
        self._started = False

    def __enter__(self) -> BlockWriter:
        self._thread.start()
        self._started = True
        return self

    def put(self, image_id: int, point_ids: np.ndarray, features: np.ndarray) -> None:
        self._raise_if_failed()
        while True:  # wake up now and then, so a dead writer cannot block us for ever
            try:
                self._queue.put((image_id, point_ids, features), timeout=1.0)
                return
            except queue.Full:
                self._raise_if_failed()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
        if exc is None:
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            group: list[Block] = [item]
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                group.append(item)
            if self._error is not None:
                continue  # drain without writing after a failure
            try:
                with self.store.session() as session:
                    write_blocks(session, self.extractor_key, group, dtype=self.dtype)
                if self.on_written is not None:
                    self.on_written([image_id for image_id, _, _ in group])
            except BaseException as error:  # handed to the caller's thread
                self._error = error
