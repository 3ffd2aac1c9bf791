"""A CNN extractor run by OpenVINO alone: uint8 patches in, features out, no torch.

Why a class of its own: the network, once converted (and cached, :mod:`.model_cache`),
needs neither torch nor timm, which cost about 650 MB and several seconds to import.
The preprocessing (scale to ``[0, input_range]``, RGB->BGR, mean, std, NHWC->NCHW) is
compiled into the OpenVINO graph, so patches go in as the uint8 crops they are: no float
copies in Python. The input shape is fixed at ``request_batch`` (a static shape is faster
than a dynamic one on the CPU plugin; the last batch is padded), and several infer
requests run at once (OpenVINO's throughput mode: one stream per group of cores), each on
``request_batch`` patches.

Precisions: ``f32`` (exact: features equal eager PyTorch's to float rounding), ``bf16``
(refused on CPUs without bf16 instructions, where OpenVINO would silently run f32 under a
bf16 key) and ``int8`` (an IR quantised beforehand, see :mod:`.quantize`). Importing this
module imports neither torch nor OpenVINO.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from quadrat.errors import InputError, missing_dependency
from quadrat.extractors.base import Extractor, ExtractorConfig

Precision = Literal["f32", "bf16", "int8"]
#: Patches per infer request: small batches in several parallel requests beat one large
#: batch on EfficientNet-B0 (measured in docs/performance.md) and need less memory.
REQUEST_BATCH = 8
#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_count() -> int:
    """Cores this process may run on (affinity-aware, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The first CPU's feature flags, or None where /proc/cpuinfo is not available."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def check_cpu_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 instructions (True where the flags cannot be read)."""
    flags = cpu_flags(cpuinfo)
    return flags is None or bool(flags & set(BF16_FLAGS))


def check_precision(precision: str, cpuinfo: str | Path = "/proc/cpuinfo") -> Precision:
    """``precision`` if this CPU runs it natively; InputError naming what is missing otherwise."""
    if precision not in ("f32", "bf16", "int8"):
        raise InputError(
            f"unknown precision {precision!r}: use f32, bf16 or int8",
            value=precision,
            param="precision",
        )
    if precision == "bf16" and not check_cpu_bf16(cpuinfo):
        raise InputError(
            "bf16 on the CPU needs bf16 instructions "
            f"({' or '.join(BF16_FLAGS)}), which this CPU lacks; use the exact f32 mode",
            value=precision,
            param="precision",
        )
    return precision  # type: ignore[return-value]


def _openvino() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise missing_dependency("openvino", "cnn", purpose="the openvino runtime") from exc
    return ov


def with_preprocessing(model: Any, config: ExtractorConfig, batch: int) -> Any:
    """``model`` (float NCHW input) taking uint8 NHWC RGB patches of a fixed batch instead."""
    ov = _openvino()
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    info = ppp.input()
    info.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    info.model().set_layout(ov.Layout("NCHW"))
    steps = info.preprocess()
    steps.convert_element_type(ov.Type.f32)
    if config.input_range != 255.0:
        # A division, as torchvision's ToTensor and TorchExtractor.preprocess do.
        steps.scale(255.0 / config.input_range)
    if config.channel_order == "BGR":
        steps.reverse_channels()
    if config.mean is not None:
        steps.mean(list(config.mean))
    if config.std is not None:
        steps.scale(list(config.std))
    built = ppp.build()
    size = config.input_size
    built.reshape([batch, size, size, 3])
    return built


class OpenVinoExtractor(Extractor):
    """A converted network with its preprocessing; see the module docstring.

    ``model`` is an ``openvino.Model`` taking float NCHW input (as converted from
    PyTorch); ``weights_tag`` and ``config`` give the same key as the TorchExtractor it
    was converted from.
    """

    runtime = "openvino"

    def __init__(
        self,
        model: Any,
        config: ExtractorConfig,
        *,
        weights_tag: str,
        precision: Precision = "f32",
        batch_size: int = 32,
        threads: int | None = None,
        request_batch: int = REQUEST_BATCH,
        mode_tag: str = "",
    ) -> None:
        if batch_size < 1 or request_batch < 1:
            raise InputError("batch_size must be at least 1", value=batch_size)
        self.config = config
        self.batch_size = batch_size
        self.device = "cpu"
        self.weights_tag = weights_tag
        self.precision: Precision = check_precision(precision)
        self.threads = threads
        self.request_batch = min(request_batch, batch_size)
        self._tag = mode_tag
        self._ir = model
        self._compile()

    def _compile(self) -> None:
        ov = _openvino()
        hint = "bf16" if self.precision == "bf16" else "f32"  # int8 IRs carry their own types
        config: dict[str, Any] = {
            # OpenVINO picks bf16 by itself on CPUs that have it; exact mode must not.
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": self.threads or cpu_count(),
            "PERFORMANCE_HINT": "THROUGHPUT",
        }
        model = with_preprocessing(self._ir.clone(), self.config, self.request_batch)
        self._compiled = ov.Core().compile_model(model, "CPU", config)
        count = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # Plain requests, waited for on this thread: no Python callbacks on OpenVINO's
        # threads (an AsyncInferQueue collected from one of them aborts the process).
        self._requests = [self._compiled.create_infer_request() for _ in range(max(1, count))]
        self._output = self._compiled.output(0)

    def _weights_tag(self) -> str:
        return self.weights_tag

    def _mode_tag(self) -> str:
        return self._tag

    def extract(self, patches: np.ndarray) -> np.ndarray:
        """Features of ``patches`` ((N, S, S, 3) uint8 RGB), ``request_batch`` per request."""
        patches = self._check_patches(patches)
        n, step = len(patches), self.request_batch
        out = np.empty((n, self.feature_dim), dtype=np.float32)
        in_flight: list[tuple[Any, int] | None] = [None] * len(self._requests)

        def collect(slot: int) -> None:
            started = in_flight[slot]
            if started is not None:
                request, begin = started
                request.wait()
                stop = min(begin + step, n)
                out[begin:stop] = request.get_tensor(self._output).data[: stop - begin]
                in_flight[slot] = None

        for index, start in enumerate(range(0, n, step)):
            slot = index % len(self._requests)
            collect(slot)  # its previous batch, if any, before it takes the next one
            batch = patches[start : start + step]
            if len(batch) < step:  # the fixed input shape: pad the last batch
                padding = np.zeros((step - len(batch), *batch.shape[1:]), batch.dtype)
                batch = np.concatenate([batch, padding])
            request = self._requests[slot]
            request.start_async({0: np.ascontiguousarray(batch)}, share_inputs=False)
            in_flight[slot] = (request, start)
        for slot in range(len(self._requests)):
            collect(slot)
        return out

    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.extract(batch)

    # Pickling (Ray ships extractors to its workers): the IR travels, the compiled model
    # is rebuilt where it lands.
    def __getstate__(self) -> dict[str, Any]:
        ov = _openvino()
        import tempfile

        with tempfile.TemporaryDirectory(prefix="quadrat-ov-") as tmp:
            ov.save_model(self._ir, str(Path(tmp) / "m.xml"), compress_to_fp16=False)
            xml = (Path(tmp) / "m.xml").read_bytes()
            weights = (Path(tmp) / "m.bin").read_bytes()
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {**state, "_tag": self._tag, "xml": xml, "bin": weights}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ov = _openvino()
        xml, weights = state.pop("xml"), state.pop("bin")
        self.__dict__.update(state)
        tensor = ov.Tensor(np.frombuffer(weights, dtype=np.uint8).copy())
        self._ir = ov.Core().read_model(model=xml.decode(), weights=tensor)
        self._compile()


__all__ = [
    "BF16_FLAGS",
    "REQUEST_BATCH",
    "OpenVinoExtractor",
    "Precision",
    "check_cpu_bf16",
    "check_precision",
    "cpu_flags",
    "with_preprocessing",
]
