"""The Ray runner as ``quadrat extract --ray`` sets it up: flags checked, cluster joined.

CLI glue, so it lives here and may speak of flags; the runner itself is
:class:`quadrat.extraction.ray_runner.RayRunner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError

if TYPE_CHECKING:  # numpy and PIL: only when --ray runs (CLI modules import light)
    from quadrat.extraction.ray_runner import RayRunner


def cli_ray_runner(
    address: str,
    *,
    num_workers: int,
    num_gpus_per_worker: float,
    device: str,
    extractor_name: str,
    weights: str | Path | None,
    batch_size: int,
    decode_threads: int,
    options: Mapping[str, Any] | None = None,
    random_weights: bool = False,
) -> RayRunner:
    """The runner behind ``quadrat extract --ray``, already connected (errors come first).

    The driver's own extractor stays on the CPU (it names the key and, for plain CPU
    workers, travels pickled). GPU workers, or extractor ``options`` (runtime, bf16,
    threads: compiled or OpenVINO networks do not pickle), rebuild it on each worker
    from its name and weights file, which must then be readable on every node.
    """
    from quadrat.extraction.ray_runner import ExtractorSpec, RayRunner

    if num_gpus_per_worker < 0:
        raise InputError(
            f"--ray-gpus must be 0 or more, not {num_gpus_per_worker}",
            value=num_gpus_per_worker,
        )
    if num_gpus_per_worker == 0 and device not in ("auto", "cpu"):
        raise InputError(
            f"--device {device} with --ray needs --ray-gpus (GPUs per Ray worker, e.g. 1)",
            value=device,
        )
    spec = None
    if num_gpus_per_worker > 0 or options:
        # Ray sets each GPU actor's CUDA_VISIBLE_DEVICES, so "cuda" is that actor's GPU.
        spec = ExtractorSpec(
            extractor_name,
            None if weights is None else str(weights),
            device="cuda" if num_gpus_per_worker > 0 else "cpu",
            batch_size=batch_size,
            options=dict(options or {}),
            random_weights=random_weights,
        )
    runner = RayRunner(
        address=address,
        num_workers=num_workers,
        num_gpus_per_worker=num_gpus_per_worker,
        decode_threads=decode_threads,
        extractor_spec=spec,
    )
    runner.start()
    return runner


__all__ = ["cli_ray_runner"]
