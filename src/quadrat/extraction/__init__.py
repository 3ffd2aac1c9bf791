"""Extraction runners: where and how patches become features (CPU threads, GPU, Ray).

The engine builds :class:`ImageJob` lists from the store and writes what a runner yields;
:func:`default_runner` picks the fastest runner the extractor's device allows.
"""

from __future__ import annotations

from quadrat.extraction.cpu import CpuRunner, job_patches
from quadrat.extraction.gpu import GpuRunner
from quadrat.extraction.jobs import ImageJob, JobResult, Runner
from quadrat.extractors.backbones import TorchExtractor
from quadrat.extractors.base import Extractor


def default_runner(extractor: Extractor, *, workers: int = 2) -> Runner:
    """The GPU pipeline for a network on a CUDA device; CPU threads for everything else."""
    if isinstance(extractor, TorchExtractor) and extractor.device.type == "cuda":
        return GpuRunner(workers=workers)
    return CpuRunner(workers=workers)


__all__ = [
    "CpuRunner",
    "GpuRunner",
    "ImageJob",
    "JobResult",
    "Runner",
    "default_runner",
    "job_patches",
]
