"""The GPU runner: JPEG decode, crops and the network on one device, fed by a bounded queue.

A producer thread reads file bytes (``workers`` threads), decodes the JPEGs of a group of
images in one batched ``torchvision.io.decode_jpeg(list, device=...)`` call (nvJPEG on
CUDA), and cuts every point's patch on the device by gathering pixels through the same
reflected indices as :mod:`quadrat.patches` (no whole-image padding). Groups of patches
wait in a ``queue.Queue(maxsize=prefetch)``; the caller's thread runs the network on full
batches taken across images and copies features back one batch at a time. Memory is
bounded by ``prefetch`` groups of about one batch each, never by the number of images.

The same code runs on ``device="cpu"`` (decode by torchvision's libjpeg, which gives
Pillow's pixels exactly): that is how it is tested without a GPU. CUDA-only calls (streams,
events, pinned buffers, non-blocking copies) are used only on a CUDA device.

Files nvJPEG may decode differently or not at all (not JPEG, CMYK/YCCK, truncated, larger
than ``MAX_PIXELS``) go through :func:`quadrat.io.images.load_rgb` on a worker thread and
are uploaded, so every file gives the pixels, warnings and errors the CPU path gives.

Why this module is long: the producer, the device crops and the batching consumer share
one queue protocol and one set of CUDA-only branches; apart, each would be unreadable.
"""

from __future__ import annotations

import io
import queue
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_jpeg

from quadrat.errors import InputError, PointOutsideImageError
from quadrat.extraction.cpu import CpuRunner
from quadrat.extraction.jobs import ImageJob, JobResult
from quadrat.extractors.base import Extractor
from quadrat.extractors.torch_extractor import TorchExtractor
from quadrat.io.images import (
    MAX_PIXELS,
    exif_orientation,
    load_rgb,
    read_bytes,
    warn_orientation,
)
from quadrat.patches import check_points_inside, reflect_indices

#: Patches per network call on CUDA when the extractor asks for fewer (its batch size is
#: sized for CPUs); an H100 needs about 512 to be busy.
CUDA_BATCH = 512
#: Groups of about one batch each that may wait, decoded and cropped, for the network.
PREFETCH = 3
#: At most this many images are decoded in one batched call (bounds a group of images with
#: few points each).
MAX_GROUP_IMAGES = 64
#: Batches whose features may still be on their way back to the host (CUDA only).
IN_FLIGHT = 2

_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
# torchvision 0.29 deprecates its decoders in favour of TorchCodec, which has no batched
# nvJPEG decode yet; keep using them, without one warning per call.
warnings.filterwarnings(
    "ignore", message=r"The image decoding and encoding capabilities of TorchVision"
)


@dataclass(frozen=True)
class _Group:
    """Patches of consecutive jobs, on the device, ready once ``ready`` has passed."""

    jobs: list[ImageJob]
    patches: torch.Tensor  # (n, S, S, 3) uint8
    ready: torch.cuda.Event | None


_DONE = object()


@dataclass
class GpuRunner:
    """Decode, crop and extract on the extractor's device; see the module docstring.

    ``batch_size``: patches per network call (default: the extractor's, at least
    :data:`CUDA_BATCH` on CUDA). ``prefetch``: groups waiting in the queue. ``workers``:
    threads reading files (and decoding the files nvJPEG does not take). ``compile``: run
    the network through ``torch.compile`` (default mode; batches padded to one shape so it
    compiles once). Non-network extractors are handed to :class:`CpuRunner`.
    """

    workers: int = 2
    batch_size: int | None = None
    prefetch: int = PREFETCH
    max_group_images: int = MAX_GROUP_IMAGES
    compile: bool = False
    _compiled: dict[tuple[int, bool], Callable[[torch.Tensor], torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __call__(self, jobs: Iterable[ImageJob], extractor: Extractor) -> Iterator[JobResult]:
        if not isinstance(extractor, TorchExtractor):
            yield from CpuRunner(workers=self.workers)(jobs, extractor)
            return
        batch = self.effective_batch_size(extractor)
        model = self._network(extractor)
        groups: queue.Queue[object] = queue.Queue(maxsize=max(1, self.prefetch))
        stop = threading.Event()
        with ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="read") as pool:
            producer = threading.Thread(
                target=self._produce,
                args=(iter(jobs), extractor, batch, groups, stop, pool),
                name="quadrat-gpu-prefetch",
                daemon=True,
            )
            producer.start()
            try:
                yield from self._consume(groups, producer, extractor, model, batch)
            finally:
                stop.set()  # a producer waiting on the full queue gives up within 50 ms
                producer.join()

    def effective_batch_size(self, extractor: TorchExtractor) -> int:
        """Patches per network call for ``extractor`` (see the class docstring)."""
        if self.batch_size is not None:
            return max(1, self.batch_size)
        if extractor.device.type == "cuda":
            return max(extractor.batch_size, CUDA_BATCH)
        return max(1, extractor.batch_size)

    # --- the producer thread: files -> patches on the device ----------------------------

    def _produce(
        self,
        jobs: Iterator[ImageJob],
        extractor: TorchExtractor,
        batch: int,
        groups: queue.Queue[object],
        stop: threading.Event,
        pool: ThreadPoolExecutor,
    ) -> None:
        device = extractor.device
        size = extractor.config.input_size
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        context: AbstractContextManager[object] = (
            torch.cuda.stream(stream) if stream is not None else nullcontext()
        )
        try:
            with context, torch.inference_mode():
                group: list[ImageJob] = []
                points = 0
                for job in jobs:
                    if stop.is_set():
                        return
                    group.append(job)
                    points += len(job)
                    if points >= batch or len(group) >= self.max_group_images:
                        if not self._put_group(group, groups, stop, device, size, stream, pool):
                            return
                        group, points = [], 0
                if group and not self._put_group(group, groups, stop, device, size, stream, pool):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it in order
            _put(groups, exc, stop)
            return
        _put(groups, _DONE, stop)

    @staticmethod
    def _put_group(
        group: list[ImageJob],
        groups: queue.Queue[object],
        stop: threading.Event,
        device: torch.device,
        size: int,
        stream: torch.cuda.Stream | None,
        pool: ThreadPoolExecutor,
    ) -> bool:
        """Prepare and queue one group; if it fails, image by image, so that the images
        before the bad one are still extracted (and stored) before its error is raised."""
        try:
            prepared = [_prepare(group, device, size, stream, pool)]
        except Exception:
            if len(group) == 1:
                raise
            prepared = []
            for job in group:
                try:
                    prepared.append(_prepare([job], device, size, stream, pool))
                except Exception:
                    for item in prepared:
                        if not _put(groups, item, stop):
                            return False
                    raise
        return all(_put(groups, item, stop) for item in prepared)

    # --- the caller's thread: patches -> features -> results in job order ---------------

    def _consume(
        self,
        groups: queue.Queue[object],
        producer: threading.Thread,
        extractor: TorchExtractor,
        model: Callable[[torch.Tensor], torch.Tensor],
        batch: int,
    ) -> Iterator[JobResult]:
        device = extractor.device
        sink = _FeatureSink(extractor.feature_dim, device)
        waiting: deque[ImageJob] = deque()
        pending: list[torch.Tensor] = []
        pending_n = 0
        failure: BaseException | None = None
        while True:
            item = _next_group(groups, producer)
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                failure = item  # finish the images before the bad one, then raise
                break
            assert isinstance(item, _Group)
            patches = item.patches
            if item.ready is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(item.ready)
                patches.record_stream(current)  # made on the producer's stream
            waiting.extend(item.jobs)
            if len(patches):
                pending.append(patches)
                pending_n += len(patches)
            while pending_n >= batch:
                stacked = pending[0] if len(pending) == 1 else torch.cat(pending)
                sink.add(self._forward(extractor, model, stacked[:batch], batch))
                rest = stacked[batch:]
                pending = [rest] if len(rest) else []
                pending_n -= batch
            sink.collect(keep=IN_FLIGHT - 1)
            yield from _finished(waiting, sink)
        if pending_n:
            stacked = pending[0] if len(pending) == 1 else torch.cat(pending)
            sink.add(self._forward(extractor, model, stacked, batch))
        sink.collect(keep=0)
        yield from _finished(waiting, sink)
        if failure is not None:
            raise failure
        if waiting:  # cannot happen: every job's patches went through the network
            raise RuntimeError(f"GpuRunner lost the features of image {waiting[0].name!r}")

    def features(self, extractor: TorchExtractor, patches: torch.Tensor) -> torch.Tensor:
        """Features of one batch of (n, S, S, 3) uint8 patches already on the device.

        Exactly what the pipeline runs per batch (the model-only figure of
        benchmarks/gpu_extract.py); ``n`` at most :meth:`effective_batch_size`.
        """
        batch = self.effective_batch_size(extractor)
        if len(patches) > batch:
            raise InputError(f"at most {batch} patches per call", value=len(patches))
        return self._forward(extractor, self._network(extractor), patches, batch)

    def _forward(
        self,
        extractor: TorchExtractor,
        model: Callable[[torch.Tensor], torch.Tensor],
        patches: torch.Tensor,
        batch: int,
    ) -> torch.Tensor:
        """The extractor's preprocessing, then ``model`` (see :meth:`_network`) on one batch."""
        n = len(patches)
        compiled = self.compile or extractor.runtime == "compile"
        if compiled and n < batch:  # one input shape: compile once, not per remainder
            padding = patches.new_zeros((batch - n, *patches.shape[1:]))
            patches = torch.cat([patches, padding])
        with torch.inference_mode():
            return model(extractor.preprocess(patches))[:n]

    def _network(self, extractor: TorchExtractor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Preprocessed batch -> (n, D) float32 features.

        The extractor's own ``forward`` (its runtime and bf16 flag), unless ``compile`` is set
        for an eager extractor: then ``torch.compile`` in its default mode with one static
        shape (the configuration specs/measurements.md measured on an H100), once per network.
        """
        if not self.compile or extractor.runtime != "eager":
            return extractor.forward
        key = (id(extractor.model), extractor.autocast_bf16)
        if key not in self._compiled:
            network = torch.compile(extractor.model, dynamic=False)
            device_type, bf16 = extractor.device.type, extractor.autocast_bf16

            def forward(x: torch.Tensor) -> torch.Tensor:
                with torch.autocast(device_type, torch.bfloat16, enabled=bf16):
                    return network(x).float()

            self._compiled[key] = forward
        return self._compiled[key]


# --- helpers of the producer ------------------------------------------------------------


def _next_group(groups: queue.Queue[object], producer: threading.Thread) -> object:
    """The next queued item; a producer that died without a word is an error, not a hang."""
    while True:
        try:
            return groups.get(timeout=0.5)
        except queue.Empty:
            if not producer.is_alive() and groups.empty():
                raise RuntimeError("the prefetch thread ended without a result") from None


def _put(groups: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Block until the queue takes ``item`` (the prefetch bound) or the consumer stops."""
    while not stop.is_set():
        try:
            groups.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def takes_jpeg_decoder(data: bytearray, path: str | Path) -> bool:
    """Whether torchvision's decoders give ``load_rgb``'s pixels for this file.

    A complete JPEG (ends with its EOI marker) in greyscale or YCbCr/RGB, within
    ``MAX_PIXELS``. Reads only the header; warns about an EXIF orientation as load_rgb does.
    """
    if not data.startswith(_JPEG_START) or not data.rstrip(b"\0").endswith(_JPEG_END):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            accepted = im.format == "JPEG" and im.mode in ("RGB", "L")
            orientation = exif_orientation(im)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return False
    if not accepted or width * height > MAX_PIXELS:
        return False
    if orientation != 1:
        warn_orientation(Path(path), orientation)
    return True


def _load_hwc(job: ImageJob) -> np.ndarray:
    """Pillow's decode, for the files the JPEG decoder does not take (errors name the file)."""
    return load_rgb(job.path)


def _read(job: ImageJob) -> bytearray | np.ndarray:
    """A JPEG's bytes for the batched decoder, else the image decoded by Pillow (HWC)."""
    data = read_bytes(job.path)
    return data if takes_jpeg_decoder(data, job.path) else _load_hwc(job)


def _upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host array to ``device``: through pinned memory, asynchronously, on CUDA."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _decode(
    encoded: list[bytearray], jobs: list[ImageJob], device: torch.device, pool: ThreadPoolExecutor
) -> list[torch.Tensor]:
    """CHW uint8 RGB images on ``device``: one batched call on CUDA, threads on CPU.

    nvJPEG returns nothing when one file of a batch fails, so a failed batch is decoded
    file by file, and a file that still fails goes to Pillow (whose error names it).
    """
    tensors = [torch.frombuffer(data, dtype=torch.uint8) for data in encoded]

    def one(index: int) -> torch.Tensor:
        try:
            return decode_jpeg(tensors[index], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            return _upload(_load_hwc(jobs[index]), device).permute(2, 0, 1)

    if device.type == "cuda":
        try:
            return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            return [one(i) for i in range(len(tensors))]
    return list(pool.map(one, range(len(tensors))))


def _check_points(job: ImageJob, height: int, width: int) -> None:
    try:
        check_points_inside(job.rows, job.cols, height, width)
    except PointOutsideImageError as exc:  # the same words as the CPU runner's
        raise PointOutsideImageError(
            f"image {job.name!r}: {exc}", path=job.path, value=exc.value
        ) from exc


def _prepare(
    jobs: list[ImageJob],
    device: torch.device,
    size: int,
    stream: torch.cuda.Stream | None,
    pool: ThreadPoolExecutor,
) -> _Group:
    """Read, decode and crop one group of images into (n, size, size, 3) uint8 on ``device``."""
    loaded: list[bytearray | np.ndarray | None] = list(
        pool.map(lambda job: _read(job) if len(job) else None, jobs)  # no points: no pixels
    )
    images: list[torch.Tensor | None] = [None] * len(jobs)
    jpeg_at = [i for i, item in enumerate(loaded) if isinstance(item, bytearray)]
    if jpeg_at:
        encoded = [item for item in loaded if isinstance(item, bytearray)]
        decoded = _decode(encoded, [jobs[i] for i in jpeg_at], device, pool)
        for i, chw in zip(jpeg_at, decoded, strict=True):
            images[i] = chw.permute(1, 2, 0)  # HWC view; made contiguous when cropped
    for i, item in enumerate(loaded):
        if isinstance(item, np.ndarray):
            images[i] = _upload(item, device)
    del loaded

    half = -(-size // 2)  # rows [row - ceil(size/2), ... + size), as patches.py
    offsets = np.arange(size, dtype=np.int64)
    row_index, col_index = [], []
    for job, image in zip(jobs, images, strict=True):
        if image is None:
            continue
        height, width = int(image.shape[0]), int(image.shape[1])
        _check_points(job, height, width)
        row_index.append(reflect_indices(job.rows[:, None] - half + offsets, height))
        col_index.append(reflect_indices(job.cols[:, None] - half + offsets, width))
    no_index = np.empty((0, size), dtype=np.int64)
    rows = _upload(np.concatenate([no_index, *row_index]), device)
    cols = _upload(np.concatenate([no_index, *col_index]), device)

    total = sum(len(job) for job in jobs)
    out = torch.empty((total, size, size, 3), dtype=torch.uint8, device=device)
    start = 0
    for job, image in zip(jobs, images, strict=True):
        stop = start + len(job)
        if image is not None:
            height, width = int(image.shape[0]), int(image.shape[1])
            pixels = image.contiguous().view(height * width, 3)
            flat = rows[start:stop, :, None] * width + cols[start:stop, None, :]
            torch.index_select(pixels, 0, flat.view(-1), out=out[start:stop].view(-1, 3))
        start = stop
    ready = None
    if stream is not None:
        ready = torch.cuda.Event()
        ready.record(stream)
    return _Group(jobs=jobs, patches=out, ready=ready)


# --- helpers of the consumer ------------------------------------------------------------


class _FeatureSink:
    """Features on their way back to the host, oldest first.

    On CUDA each batch is copied into pinned memory without blocking and waited for only
    when ``keep`` newer batches are in flight, so the GPU starts the next batch while the
    previous one's features travel; on CPU the features are simply there.
    """

    def __init__(self, dim: int, device: torch.device) -> None:
        self.device = device
        self.done = np.empty((0, dim), dtype=np.float32)
        self._in_flight: deque[tuple[torch.cuda.Event, torch.Tensor]] = deque()

    def add(self, features: torch.Tensor) -> None:
        if self.device.type != "cuda":
            self._append(features.cpu().numpy())  # no copy on the CPU
            return
        host = torch.empty(features.shape, dtype=features.dtype, pin_memory=True)
        host.copy_(features, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(self.device))
        self._in_flight.append((copied, host))

    def collect(self, keep: int) -> None:
        """Wait for all but the ``keep`` newest batches and move them to ``done``."""
        while len(self._in_flight) > max(0, keep):
            copied, host = self._in_flight.popleft()
            copied.synchronize()
            self._append(host.numpy())

    def _append(self, features: np.ndarray) -> None:
        if len(self.done):
            self.done = np.concatenate([self.done, features])
        else:
            self.done = np.array(features, dtype=np.float32, copy=True)

    def take(self, n: int) -> np.ndarray:
        rows, self.done = self.done[:n].copy(), self.done[n:]
        return rows


def _finished(waiting: deque[ImageJob], sink: _FeatureSink) -> Iterator[JobResult]:
    """Yield, in order, the waiting jobs whose features are all back on the host."""
    while waiting and len(waiting[0]) <= len(sink.done):
        job = waiting.popleft()
        yield job, sink.take(len(job))


__all__ = ["CUDA_BATCH", "GpuRunner", "takes_jpeg_decoder"]
