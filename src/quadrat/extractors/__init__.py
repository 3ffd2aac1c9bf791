"""Feature extractors: patches (N, 224, 224, 3) uint8 RGB -> (N, D) float32 vectors.

``create_extractor("texture")`` is the weights-free default and needs no torch; CNNs
(``efficientnet_b0``, ``resnet50``, ``vgg16``, ``timm:<model>``, a backbone file) read
local weights files in the published layouts of CoralNet/pyspacer and BenthicNet and
need the ``cnn`` extra. Importing this package imports no torch: ``TorchExtractor`` is
loaded on first use. See docs/extractors.md.

Modules: ``registry`` (names), ``factory`` (``create_extractor``), ``base``, ``texture``,
``networks`` (the registered CNNs), ``torch_extractor``, ``runtimes``, ``checkpoints``
(safe reading of weights files), ``layouts`` (published layouts), ``backbone_file``
(``quadrat-backbone/1``, read and write), ``timm_utils`` (headless timm networks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quadrat.extractors import networks, texture  # noqa: F401  (registers the factories)
from quadrat.extractors.base import Extractor, ExtractorConfig
from quadrat.extractors.factory import create_extractor
from quadrat.extractors.registry import list_extractors, register_extractor
from quadrat.extractors.texture import TextureExtractor

if TYPE_CHECKING:
    from quadrat.extractors.torch_extractor import TorchExtractor


def __getattr__(name: str) -> Any:
    """``TorchExtractor`` on first use (it imports torch)."""
    if name == "TorchExtractor":
        from quadrat.extractors.torch_extractor import TorchExtractor

        return TorchExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Extractor",
    "ExtractorConfig",
    "TextureExtractor",
    "TorchExtractor",
    "create_extractor",
    "list_extractors",
    "register_extractor",
]
