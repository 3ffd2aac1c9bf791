"""What every feature extractor is: a config (preprocessing travels with it) and ``extract``.

The feature store files vectors under ``Extractor.key``; the key changes whenever the
features would (another network, other weights, another numeric mode), so stale vectors
are never mixed with new ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from quadrat.errors import InputError

if TYPE_CHECKING:  # torch only for CNNs; the texture extractor runs without it
    import torch

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class ExtractorConfig:
    """Everything needed to reproduce an extractor's input and output, like timm's pretrained_cfg.

    Pixels are scaled to ``[0, input_range]`` (``x / 255 * input_range``), reordered to
    ``channel_order``, then ``mean`` is subtracted and the result divided by ``std`` where
    given (``None`` = skip that step; both ``None`` = only scale to [0, 1], as pyspacer).
    """

    name: str
    feature_dim: int
    input_size: int = 224
    mean: RGB | None = None
    std: RGB | None = None
    weights: str | None = None
    weights_sha256: str | None = None
    input_range: float = 1.0
    channel_order: Literal["RGB", "BGR"] = "RGB"


class Extractor(ABC):
    """Turns (N, S, S, 3) uint8 RGB patches into (N, feature_dim) float32 vectors.

    ``device`` is a ``torch.device`` for networks and the string ``"cpu"`` for numpy
    extractors, which never import torch.
    """

    config: ExtractorConfig
    batch_size: int
    device: str | torch.device

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def key(self) -> str:
        """Stable id for the feature store: same key, same features (up to float rounding)."""
        return f"{self.config.name}@{self._weights_tag()}{self._mode_tag()}"

    def _weights_tag(self) -> str:
        sha = self.config.weights_sha256
        return sha[:12] if sha else "noweights"

    def _mode_tag(self) -> str:
        """Suffix for numeric modes that change the features (e.g. ``+bf16``)."""
        return ""

    def extract(self, patches: np.ndarray) -> np.ndarray:
        """Features of ``patches`` ((N, S, S, 3) uint8 RGB), computed ``batch_size`` at a time."""
        patches = self._check_patches(patches)
        out = np.empty((len(patches), self.feature_dim), dtype=np.float32)
        for start in range(0, len(patches), self.batch_size):
            stop = start + self.batch_size
            out[start:stop] = self._extract_batch(patches[start:stop])
        return out

    @abstractmethod
    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        """Features of one batch of checked patches."""

    def _check_patches(self, patches: np.ndarray) -> np.ndarray:
        size = self.config.input_size
        patches = np.asarray(patches)
        if patches.ndim != 4 or patches.shape[1:] != (size, size, 3):
            raise InputError(
                f"{self.config.name} expects patches of shape (N, {size}, {size}, 3),"
                f" got {patches.shape}",
                value=patches.shape,
            )
        if patches.dtype != np.uint8:
            raise InputError(
                f"{self.config.name} expects uint8 RGB patches, got {patches.dtype}",
                value=patches.dtype,
            )
        return patches

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, device={self.device})"
