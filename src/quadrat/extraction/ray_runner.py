"""The Ray runner: extraction spread over the workers of a Ray cluster (one actor each).

Ray does the cluster work (scheduling, CPU/GPU placement, moving objects); this module
only decides what goes where. Each actor holds one copy of the extractor and runs the
ordinary single-machine runner (:func:`quadrat.extraction.default_runner`: CPU threads,
or the GPU pipeline on a GPU worker) on chunks of a few images. The driver keeps a fixed
window of chunks in flight, least-loaded actor first, and yields results in job order;
the workflow on the driver alone writes the feature store, so results, resumption and
keys are those of a single-process run.

Workers read images by their stored path (a filesystem all nodes share) unless
``ship_images`` is set, in which case the driver reads the files and sends their bytes.
The extractor travels once through the object store (pickled, weights included), or,
with ``extractor_spec``, is rebuilt on each worker (its device, e.g. a worker's GPU);
either way every worker's ``Extractor.key`` is checked against the driver's first.
"""

from __future__ import annotations

import itertools
import os
import resource
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from quadrat.errors import (
    ExtractorMismatchError,
    InputError,
    QuadratError,
    RayClusterError,
    missing_dependency,
)
from quadrat.extraction.jobs import ImageJob, JobResult, Runner
from quadrat.extractors.base import Extractor
from quadrat.io.images import read_bytes

#: Addresses that mean "start a Ray instance on this machine" rather than "connect".
LOCAL_ADDRESSES = (None, "local")


def import_ray() -> ModuleType:
    """Ray, or a MissingDependencyError saying how to install it (the ``cluster`` extra)."""
    try:
        import ray
    except ImportError as exc:
        raise missing_dependency("ray", "cluster", purpose="extraction on a Ray cluster") from exc
    return ray


@dataclass(frozen=True)
class ExtractorSpec:
    """How a worker rebuilds the extractor itself (arguments of ``create_extractor``).

    Used where pickling the driver's extractor does not fit: a CUDA extractor when the
    driver has no GPU. Weights files must then be readable on every worker.
    """

    name: str
    weights: str | None = None
    device: str = "cpu"
    batch_size: int = 32
    options: Mapping[str, Any] = field(default_factory=dict)
    random_weights: bool = False

    def build(self) -> Extractor:
        from quadrat.extractors import create_extractor

        return create_extractor(
            self.name,
            self.weights,
            random_weights=self.random_weights,
            device=self.device,
            batch_size=self.batch_size,
            **dict(self.options),
        )


class ExtractionWorker:
    """One Ray actor: the single-machine runner and the extractor of the current run.

    The extractor comes as a one-element list holding its object-store reference, so Ray
    does not fetch and unpickle it again for every chunk; the actor builds it once per
    run's token and keeps only the latest (one network in memory, not one per run).
    """

    def __init__(self, decode_threads: int) -> None:
        self.decode_threads = decode_threads
        self.extractors: dict[str, tuple[Extractor, Runner]] = {}

    def prepare(self, key: str, token: str, payload: list[Any]) -> str:
        """Build the extractor the driver calls ``key`` once per ``token``; refuse another key."""
        if token not in self.extractors:
            import ray

            from quadrat.extraction import default_runner

            sent = ray.get(payload[0])
            extractor = sent.build() if isinstance(sent, ExtractorSpec) else sent
            if extractor.key != key:
                raise ExtractorMismatchError(
                    f"a Ray worker built extractor {extractor.key!r}, the driver has {key!r}; "
                    "workers need the same quadrat version and weights file"
                )
            runner = default_runner(extractor, workers=self.decode_threads)
            self.extractors = {token: (extractor, runner)}
        return key

    def extract(
        self, token: str, jobs: list[ImageJob], images: list[bytes] | None
    ) -> list[np.ndarray]:
        """Features of ``jobs`` in order; ``images`` are the files' bytes when shipped."""
        extractor, runner = self.extractors[token]
        if images is None:
            return [features for _, features in runner(jobs, extractor)]
        with tempfile.TemporaryDirectory(prefix="quadrat-ray-") as tmp:
            local = []
            for index, (job, data) in enumerate(zip(jobs, images, strict=True)):
                path = Path(tmp) / f"{index}{Path(job.path).suffix}"
                path.write_bytes(data)
                local.append(replace(job, path=str(path)))
            try:
                return [features for _, features in runner(local, extractor)]
            except QuadratError as exc:
                message = str(exc)
                for job, copy in zip(jobs, local, strict=True):
                    message = message.replace(copy.path, job.path)
                raise type(exc)(message) from None

    def peak_rss_mb(self) -> float:
        """This worker process's peak resident memory (Linux reports KiB, macOS bytes)."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class RayRunner:
    """Extract on ``num_workers`` Ray actors; see the module docstring.

    ``address``: ``None``/``"local"`` starts Ray on this machine with
    ``num_workers * cpus_per_worker`` CPUs; ``"auto"`` joins the cluster this machine
    belongs to (``ray start``); ``"host:port"`` or ``"ray://host:port"`` a remote one.
    If this process is already connected to Ray, that connection is used.

    Each actor reserves ``cpus_per_worker`` CPUs and ``num_gpus_per_worker`` GPUs and
    decodes with ``decode_threads`` threads; a task carries ``chunk_images`` images and
    each actor has at most ``chunks_in_flight_per_worker`` of them queued, which bounds
    the driver's memory. ``task_timeout_s`` bounds every wait on a worker;
    ``init_options`` go to ``ray.init`` (e.g. ``object_store_memory``).
    """

    address: str | None = "auto"
    num_workers: int = 2
    num_gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    chunk_images: int = 4
    chunks_in_flight_per_worker: int = 2
    decode_threads: int = 2
    ship_images: bool = False
    extractor_spec: ExtractorSpec | None = None
    task_timeout_s: float | None = 900.0
    init_options: Mapping[str, Any] = field(default_factory=dict)
    #: Peak RSS of each worker in MB, filled in when a run ends (for benchmarks).
    worker_peak_rss_mb: list[float] = field(default_factory=list, init=False)
    _started: bool = field(default=False, init=False, repr=False)
    _connected: bool = field(default=False, init=False, repr=False)
    _actors: list[Any] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("num_workers", "chunk_images", "chunks_in_flight_per_worker"):
            if getattr(self, name) < 1:
                raise InputError(
                    f"RayRunner {name} must be at least 1, not {getattr(self, name)}",
                    value=getattr(self, name),
                )
        if self.decode_threads < 1:
            raise InputError(
                f"RayRunner decode_threads must be at least 1, not {self.decode_threads}",
                value=self.decode_threads,
            )

    # ------------------------------------------------------------------ connection

    def connect(self) -> ModuleType:
        """Join (or start) the Ray cluster once; errors name the address."""
        ray = import_ray()
        if self._connected and ray.is_initialized():
            return ray
        remote = self.address not in (*LOCAL_ADDRESSES, "auto")
        if remote:
            _check_reachable(str(self.address))
        if ray.is_initialized():
            self._check_same_cluster(ray)
            self._connected = True
            return ray
        options: dict[str, Any] = dict(self.init_options)
        local = self.address in LOCAL_ADDRESSES
        if local:  # a new instance even where `ray start` left a cluster to join
            options.setdefault("num_cpus", max(1, round(self.num_workers * self.cpus_per_worker)))
            options.setdefault("include_dashboard", False)
        try:
            ray.init(address="local" if local else self.address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = "a local Ray instance" if local else f"a Ray cluster at {self.address!r}"
            hint = ""
            client = str(self.address).startswith("ray://")
            if remote and not client and os.environ.get("RAY_AUTH_MODE") != "token":
                hint = (
                    " (a cluster with token authentication needs RAY_AUTH_MODE=token here, "
                    "and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                )
            raise RayClusterError(
                f"cannot start or join {where}: {_first_line(exc)}{hint}"
            ) from exc
        self._started = self._connected = True
        return ray

    def _check_same_cluster(self, ray: ModuleType) -> None:
        """Refuse a port other than that of the cluster this process already joined."""
        if self.address in (*LOCAL_ADDRESSES, "auto") or str(self.address).startswith("ray://"):
            return
        current = str(ray.get_runtime_context().gcs_address)
        if str(self.address).rpartition(":")[2] != current.rpartition(":")[2]:
            raise RayClusterError(
                f"this process is already connected to the Ray cluster at {current!r}, "
                f"not {self.address!r}"
            )

    def release(self) -> None:
        """Stop this runner's actors (their CPUs/GPUs go back to the cluster)."""
        if self._actors:
            ray = import_ray()
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []

    def close(self) -> None:
        """Stop the actors and leave the cluster (stopping it if it was started here)."""
        self.release()
        if self._started:
            import_ray().shutdown()
        self._started = self._connected = False

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running

    def __call__(self, jobs: Iterable[ImageJob], extractor: Extractor) -> Iterator[JobResult]:
        """Yield every job's features in order; see :class:`quadrat.extraction.Runner`.

        The actors outlive the call, so one runner serves several extractions. A call that
        stops early (bad input on a worker, or a caller that stops reading) waits for the
        chunks still in flight, at most the window, so none stays queued; after a cluster
        failure (a lost worker, a timeout) the actors are stopped and the next call starts
        new ones.
        """
        actors = self.start()
        ray = import_ray()
        key = extractor.key
        sent = self.extractor_spec if self.extractor_spec is not None else extractor
        payload = [ray.put(sent)]
        token = key if self.extractor_spec is None else f"{key} {self.extractor_spec!r}"
        pending: deque[tuple[list[ImageJob], Any, int]] = deque()
        try:
            prepared = [a.prepare.remote(key, token, payload) for a in actors]
            self._get(ray, prepared, "starting the Ray workers")
            yield from self._dispatch(ray, actors, token, jobs, pending)
            self.worker_peak_rss_mb = self._get(
                ray, [a.peak_rss_mb.remote() for a in actors], "reading worker memory"
            )
        except RayClusterError as exc:
            if not isinstance(exc, ExtractorMismatchError):  # the actors may be unsound
                pending.clear()
                self.release()
            raise
        finally:
            if pending:
                refs = [ref for _, ref, _ in pending]
                ray.wait(refs, num_returns=len(refs), timeout=self.task_timeout_s)

    def start(self) -> list[Any]:
        """Join the cluster and launch the actors without waiting for them.

        They boot (import torch and quadrat) while the caller builds its extractor.
        """
        ray = self.connect()
        if not self._actors:
            self._check_capacity(ray)
            actor_class = ray.remote(ExtractionWorker).options(
                num_cpus=self.cpus_per_worker, num_gpus=self.num_gpus_per_worker
            )
            self._actors = [
                actor_class.remote(self.decode_threads) for _ in range(self.num_workers)
            ]
        return self._actors

    def _check_capacity(self, ray: ModuleType) -> None:
        """Fail now, not after ``task_timeout_s``, when the actors can never all be placed."""
        total = ray.cluster_resources()
        for resource_name, per_worker in (
            ("CPU", self.cpus_per_worker),
            ("GPU", self.num_gpus_per_worker),
        ):
            need = per_worker * self.num_workers
            have = float(total.get(resource_name, 0.0))
            if need > have:
                raise RayClusterError(
                    f"{self.num_workers} Ray workers need {need:g} {resource_name}s "
                    f"({per_worker:g} each); the cluster has {have:g}"
                )

    def _dispatch(
        self,
        ray: ModuleType,
        actors: list[Any],
        token: str,
        jobs: Iterable[ImageJob],
        pending: deque[tuple[list[ImageJob], Any, int]],
    ) -> Iterator[JobResult]:
        """A bounded window of chunks in flight (``pending``); results in job order."""
        chunks = _chunks(jobs, self.chunk_images)
        window = self.num_workers * self.chunks_in_flight_per_worker
        load = [0] * len(actors)

        def submit() -> None:
            while len(pending) < window:
                chunk = next(chunks, None)
                if chunk is None:
                    return
                images = [read_bytes(job.path) for job in chunk] if self.ship_images else None
                index = load.index(min(load))
                pending.append((chunk, actors[index].extract.remote(token, chunk, images), index))
                load[index] += 1

        submit()
        while pending:
            chunk, ref, index = pending[0]
            names = f"{chunk[0].name}" + (f" .. {chunk[-1].name}" if len(chunk) > 1 else "")
            features = self._get(ray, ref, f"extracting images {names}")
            pending.popleft()
            load[index] -= 1
            submit()  # keep the workers busy while the workflow writes these
            if len(features) != len(chunk):
                raise RayClusterError(
                    f"a Ray worker returned {len(features)} results for {len(chunk)} images "
                    f"({names})"
                )
            yield from zip(chunk, features, strict=True)

    def _get(self, ray: ModuleType, refs: Any, what: str) -> Any:
        """``ray.get`` with a timeout; a worker's quadrat error comes back as itself."""
        from ray import exceptions

        try:
            return ray.get(refs, timeout=self.task_timeout_s)
        except exceptions.GetTimeoutError as exc:
            raise RayClusterError(f"{what}: no result within {self.task_timeout_s} s") from exc
        except exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, QuadratError):
                raise cause from None
            raise RayClusterError(
                f"{what}: a Ray worker failed: {_first_line(cause or exc)}"
            ) from exc
        except exceptions.RayError as exc:
            raise RayClusterError(f"{what}: {_first_line(exc)}") from exc


def _chunks(jobs: Iterable[ImageJob], size: int) -> Iterator[list[ImageJob]]:
    """Consecutive lists of ``size`` jobs, read lazily from ``jobs``."""
    iterator = iter(jobs)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, naming the address, rather than wait out Ray's connection retries."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayClusterError(
            f"Ray address {address!r} is not 'auto', 'local', 'host:port' or 'ray://host:port'"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RayClusterError(f"cannot reach a Ray cluster at {address!r}: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
