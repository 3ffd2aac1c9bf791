"""A CNN as an extractor: a network, its preprocessing and its weights, on a device.

Random weights (``weights=None``, only when asked for with ``random_weights=True``) are
seeded, and their BatchNorm running statistics are re-estimated on a fixed synthetic
batch: with the default statistics (mean 0, variance 1) activations shrink layer after
layer and EfficientNet-B0's pooled features end up around 1e-13, which would make any
comparison or classifier on them meaningless.

Importing this module imports torch: it is reached only when a CNN is built (see
:mod:`quadrat.extractors.networks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import nn

from quadrat.errors import InputError, WeightsError
from quadrat.extractors.base import RGB, Extractor, ExtractorConfig
from quadrat.extractors.checkpoints import existing_file, file_sha256, first_keys, read_state_dict
from quadrat.extractors.layouts import Converter, Layout, detect_layout
from quadrat.extractors.runtimes import Forward, RuntimeName, make_forward, resolve_runtime

T = TypeVar("T")


class TorchExtractor(Extractor):
    """A network whose forward pass returns pooled features (timm ``num_classes=0`` style).

    ``channels_last`` speeds up CPU and GPU convolutions without changing results beyond
    float rounding; ``autocast_bf16`` trades exactness for speed and so changes the key.
    ``runtime`` (``eager``, ``compile``, ``openvino``; see :mod:`.runtimes`) executes the
    network; ``threads`` caps OpenVINO's threads (PyTorch's are set by the runner).
    """

    device: torch.device

    def __init__(
        self,
        model: nn.Module,
        config: ExtractorConfig,
        *,
        weights_tag: str,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        channels_last: bool = True,
        autocast_bf16: bool = False,
        runtime: str = "auto",
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError("batch_size must be at least 1", value=batch_size)
        self.device = torch.device(device)
        # ``auto`` is resolved now, so the key (which names OpenVINO's bf16) is fixed.
        self.runtime: RuntimeName = resolve_runtime(runtime, self.device)
        self._fallback = runtime == "auto"
        self.threads = threads
        self._forward: Forward | None = None
        self.config = config
        self.batch_size = batch_size
        self.channels_last = channels_last
        self.autocast_bf16 = autocast_bf16
        self.weights_tag = weights_tag
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.model.to(memory_format=memory_format)
        shape = (1, 3, 1, 1)
        self._mean = _as_tensor(config.mean, shape, self.device)
        self._std = _as_tensor(config.std, shape, self.device)

    def _weights_tag(self) -> str:
        return self.weights_tag

    def _mode_tag(self) -> str:
        # fp32 runtimes agree to float rounding and share a key; reduced precision does
        # not, and each runtime rounds differently.
        if not self.autocast_bf16:
            return ""
        return "+openvino-bf16" if self.runtime == "openvino" else "+bf16"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network under the extractor's runtime on a preprocessed batch: (N, D) float32."""
        if self._forward is None:
            self._forward = make_forward(
                self.model,
                self.runtime,
                device=self.device,
                input_size=self.config.input_size,
                bf16=self.autocast_bf16,
                threads=self.threads,
                fallback=self._fallback,
            )
        n = len(x)
        if self.runtime == "compile" and 0 < n < self.batch_size:
            # One input shape, so the compiled graph is built once, not per remainder.
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        return self._forward(x)[:n]

    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.extract_tensor(torch.from_numpy(batch)).cpu().numpy()

    def preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC RGB, or float NCHW RGB in [0, 1] -> the network's float NCHW input."""
        if batch.dtype == torch.uint8:
            x = batch.to(self.device).permute(0, 3, 1, 2).float()
            if self.config.input_range != 255.0:
                # A division, like torchvision's ToTensor, so that features match pyspacer's.
                x = x.div(255.0)
                if self.config.input_range != 1.0:
                    x = x.mul(self.config.input_range)
        else:
            x = batch.to(self.device, torch.float32)
            if self.config.input_range != 1.0:
                x = x.mul(self.config.input_range)
        if self.config.channel_order == "BGR":
            x = x.flip(1)
        if self._mean is not None:
            x = x.sub(self._mean)
        if self._std is not None:
            x = x.div(self._std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def extract_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Features of a tensor batch (may already sit on the device): (N, feature_dim) float32.

        ``batch`` is uint8 NHWC RGB (as cropped) or float NCHW RGB scaled to [0, 1].
        """
        size = self.config.input_size
        expected = (size, size, 3) if batch.dtype == torch.uint8 else (3, size, size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise InputError(
                f"{self.config.name} expects a batch of shape (N, {', '.join(map(str, expected))})"
                f" for {batch.dtype}, got {tuple(batch.shape)}",
                value=tuple(batch.shape),
            )
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            outputs.append(self.forward(self.preprocess(batch[start : start + self.batch_size])))
        if not outputs:
            return torch.empty((0, self.feature_dim), device=self.device)
        return torch.cat(outputs)


def _as_tensor(
    values: tuple[float, ...] | None, shape: tuple[int, ...], device: torch.device
) -> torch.Tensor | None:
    return None if values is None else torch.tensor(values, device=device).reshape(shape)


# --- building --------------------------------------------------------------------------


def seeded(make_model: Callable[[], T], seed: int) -> T:
    """Build a network with seeded initial weights, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_model()


def build_extractor(
    name: str,
    model: nn.Module,
    *,
    feature_dim: int,
    weights: str | Path | None,
    layouts: Mapping[Layout, Converter],
    head_prefixes: tuple[str, ...] = (),
    mean: RGB | None = None,
    std: RGB | None = None,
    input_range: float = 1.0,
    channel_order: Literal["RGB", "BGR"] = "RGB",
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """Load ``weights`` into ``model`` (or keep its seeded random ones) and wrap it.

    ``weights=None`` means random weights: callers (the registered factories) have
    checked that they were asked for on purpose.

    ``layouts`` maps each checkpoint layout this network accepts to its converter;
    ``head_prefixes`` name classifier keys that a file may carry but features never use.
    """
    sha = None
    if weights is not None:
        sha = file_sha256(existing_file(weights))
        load_weights(model, weights, layouts=layouts, head_prefixes=head_prefixes)
    config = ExtractorConfig(
        name=name,
        feature_dim=feature_dim,
        mean=mean,
        std=std,
        weights=None if weights is None else str(weights),
        weights_sha256=sha,
        input_range=input_range,
        channel_order=channel_order,
    )
    tag = sha[:12] if sha else ""
    if weights is None:
        # The key hashes the seeded initial weights: the BatchNorm re-estimation below is
        # a fixed function of them, but its float rounding varies with thread counts and
        # would otherwise give the same network a new key (and orphan stored features).
        tag = f"random-{state_dict_sha256(model)[:12]}"
        # Canonical settings (CPU, contiguous), so the weights do not depend on the
        # device, memory format or batch size asked for.
        canonical = TorchExtractor(model, config, weights_tag="", channels_last=False)
        recalibrate_batchnorm(canonical, seed=seed)
    return TorchExtractor(model, config, weights_tag=tag, **options)


def load_weights(
    model: nn.Module,
    path: str | Path,
    *,
    layouts: Mapping[Layout, Converter],
    head_prefixes: tuple[str, ...] = (),
) -> None:
    """Load a weights file into ``model``, or raise WeightsError naming the file and keys."""
    path = Path(path)
    state = read_state_dict(path)
    layout = detect_layout(state)
    if layout not in layouts:
        raise WeightsError(
            f"a {layout} checkpoint, which this network does not read "
            f"(accepted layouts: {', '.join(layouts)})",
            path=path,
            param="weights",
        )
    state = layouts[layout](state)
    expected = model.state_dict()
    state = {
        k: v for k, v in state.items() if not (k.startswith(head_prefixes) and k not in expected)
    }
    unexpected = [k for k in state if k not in expected]
    # Old checkpoints may lack BatchNorm's num_batches_tracked; it plays no part in eval.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {first_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {first_keys(unexpected)}")
        raise WeightsError(
            f"does not fit ({layout} layout): {'; '.join(parts)}", path=path, param="weights"
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs network {tuple(expected[k].shape)}"
        for k, v in state.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise WeightsError(f"wrong shapes: {'; '.join(wrong[:3])}", path=path, param="weights")
    model.load_state_dict(state, strict=False)


def state_dict_sha256(model: nn.Module) -> str:
    """Hash of a network's weights, so random-weight keys change whenever the weights do."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def synthetic_patches(n: int = 16, size: int = 224, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images (uint8 NHWC), several octaves of upsampled noise.

    Deterministic for a seed; the BatchNorm re-estimation batch for random weights.
    """
    generator = torch.Generator().manual_seed(seed)
    image = torch.zeros(n, 3, size, size)
    for cells, amplitude in ((4, 1.0), (14, 0.5), (56, 0.25), (size, 0.125)):
        noise = torch.randn(n, 3, cells, cells, generator=generator)
        image += amplitude * torch.nn.functional.interpolate(
            noise, size=(size, size), mode="bilinear"
        )
    image = torch.sigmoid(1.5 * image)
    return (image * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def recalibrate_batchnorm(extractor: TorchExtractor, seed: int = 0) -> None:
    """Re-estimate BatchNorm running statistics on :func:`synthetic_patches` (one batch).

    Runs on the extractor's own preprocessing, so the statistics match its input scale.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in extractor.model.modules()):
        return
    batch = extractor.preprocess(synthetic_patches(seed=seed).to(extractor.device))
    with torch.no_grad():
        torch.optim.swa_utils.update_bn([batch], extractor.model)
    extractor.model.eval()


__all__ = [
    "TorchExtractor",
    "build_extractor",
    "load_weights",
    "recalibrate_batchnorm",
    "seeded",
    "state_dict_sha256",
    "synthetic_patches",
]
