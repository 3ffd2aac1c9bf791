"""How a CNN extractor's network is executed: eager PyTorch, torch.compile or OpenVINO.

Why several: on a CPU the network is nearly all of extraction's time, and eager PyTorch
leaves speed on the table for EfficientNet's depthwise convolutions and squeeze-excite
blocks. The *exact* runtimes (fp32) change features only by float rounding (measured
max abs difference ~5e-5 on features of magnitude ~10, see docs/extractors.md), so they
keep the extractor's key; reduced precision (``bf16``) changes features and so the key.

- ``auto`` (default): ``openvino`` on the CPU when OpenVINO is installed (the ``cnn``
  extra has it) and converts the network, else ``eager``. OpenVINO fp32 passes
  the same pyspacer parity test as eager (max abs difference 1.3e-5 against 6e-6, limit
  1e-4) and runs EfficientNet-B0 several times faster on CPUs with AVX-512.
- ``eager``: the module as is (what pyspacer runs).
- ``compile``: ``torch.compile`` (Inductor) with weight freezing, which folds BatchNorm
  into convolutions and pre-packs weights; costs a minute of compiling on first use, so it
  pays on large jobs only.
- ``openvino``: the network converted by OpenVINO (in the ``cnn`` extra),
  fp32 unless bf16 is asked for; conversion takes ~15 s. ``create_extractor`` on the CPU
  does not come here: it returns an
  :class:`~quadrat.extractors.openvino_model.OpenVinoExtractor` built from the on-disk
  model cache (:mod:`quadrat.extractors.openvino_build`), converted once with
  :func:`convert_to_openvino`. A TorchExtractor built directly with this runtime still
  converts on first use, without the cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from quadrat.errors import InputError, missing_dependency
from quadrat.extractors import openvino_build
from quadrat.extractors.openvino_model import cpu_count

RuntimeName = Literal["auto", "eager", "compile", "openvino"]
RUNTIMES: tuple[str, ...] = openvino_build.RUNTIMES

#: (N, 3, S, S) float input -> (N, D) features, on the extractor's device.
Forward = Callable[[torch.Tensor], torch.Tensor]


def check_runtime(name: str) -> RuntimeName:
    return openvino_build.check_runtime(name)  # type: ignore[return-value]


def resolve_runtime(name: str, device: torch.device) -> RuntimeName:
    """``auto`` -> ``openvino`` on a CPU with OpenVINO installed, else ``eager``.

    ``$QUADRAT_RUNTIME`` (eager, compile or openvino) overrides what ``auto`` picks, e.g.
    to keep a test suite or a comparison on eager PyTorch.
    """
    return openvino_build.resolve_runtime_name(name, device.type)  # type: ignore[return-value]


def make_forward(
    model: nn.Module,
    runtime: RuntimeName,
    *,
    device: torch.device,
    input_size: int,
    bf16: bool = False,
    threads: int | None = None,
    fallback: bool = False,
) -> Forward:
    """The forward function of ``model`` under ``runtime`` (built once, reused per batch).

    ``fallback``: if OpenVINO cannot convert the network, warn and run it eagerly (for a
    runtime chosen by ``auto``, not one the user asked for).
    """
    if runtime == "openvino" and fallback:
        try:
            return _openvino_forward(model, input_size=input_size, bf16=bf16, threads=threads)
        except Exception as error:  # an op OpenVINO cannot convert: eager still works
            warnings.warn(
                f"OpenVINO could not convert the network ({type(error).__name__}: "
                f"{error}); running it in eager PyTorch",
                RuntimeWarning,
                stacklevel=2,
            )
            return _autocast(model, device, bf16)
    if runtime == "eager":
        return _autocast(model, device, bf16)
    if runtime == "compile":
        compiled = torch.compile(model, options={"freezing": True})
        return _autocast(compiled, device, bf16)
    if device.type != "cpu":
        raise InputError(f"the openvino runtime runs on the CPU, not on {device}", value=device)
    return _openvino_forward(model, input_size=input_size, bf16=bf16, threads=threads)


def _autocast(model: Forward, device: torch.device, bf16: bool) -> Forward:
    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            return model(x).float()

    return forward


def convert_to_openvino(model: nn.Module, *, input_size: int) -> Any:
    """``model`` as an ``openvino.Model`` (fp32, float NCHW input of any batch size)."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise missing_dependency("openvino", "cnn", purpose="the openvino runtime") from exc
    example = torch.zeros(2, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit's tracer, which OpenVINO's converter uses, warns that it is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        return ov.convert_model(
            model.float().to(memory_format=torch.contiguous_format),
            example_input=example,
            input=[ov.PartialShape([-1, 3, input_size, input_size])],
        )


def _openvino_forward(
    model: nn.Module, *, input_size: int, bf16: bool, threads: int | None
) -> Forward:
    import openvino as ov

    converted = convert_to_openvino(model, input_size=input_size)
    config: dict[str, Any] = {
        # OpenVINO picks bf16 by itself on CPUs that have it; exact mode must not.
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        "INFERENCE_NUM_THREADS": threads or cpu_count(),
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = ov.Core().compile_model(converted, "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def forward(x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().float().numpy())
        result = request.infer({0: array})[output]
        return torch.from_numpy(np.array(result, dtype=np.float32, copy=True))

    return forward
