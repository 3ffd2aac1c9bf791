"""Extraction runners: where and how patches become features (CPU threads, GPU, Ray).

The workflow builds :class:`ImageJob` lists from the store and writes what a runner yields;
:func:`default_runner` picks the fastest runner the extractor's device allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quadrat.extraction.cpu import CpuRunner, job_patches
from quadrat.extraction.jobs import ImageJob, JobResult, Runner

if TYPE_CHECKING:
    from quadrat.extraction.gpu import GpuRunner
    from quadrat.extractors.base import Extractor


def default_runner(extractor: Extractor, *, workers: int = 2) -> Runner:
    """The GPU pipeline for a network on a CUDA device; CPU threads for everything else."""
    device = extractor.device  # a torch.device for networks, "cpu" for numpy extractors
    kind = device.type if hasattr(device, "type") else str(device).split(":")[0]
    if kind == "cuda":
        from quadrat.extraction.gpu import GpuRunner

        return GpuRunner(workers=workers)
    return CpuRunner(workers=workers)


def __getattr__(name: str) -> Any:
    """``GpuRunner`` on first use: importing the package must not import torch (CLI start)."""
    if name == "GpuRunner":
        from quadrat.extraction.gpu import GpuRunner

        return GpuRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CpuRunner",
    "GpuRunner",
    "ImageJob",
    "JobResult",
    "Runner",
    "default_runner",
    "job_patches",
]
