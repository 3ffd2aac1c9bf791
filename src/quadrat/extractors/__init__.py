"""Feature extractors: patches (N, 224, 224, 3) uint8 RGB -> (N, D) float32 vectors.

``create_extractor("texture")`` is the weights-free default; CNNs (``efficientnet_b0``,
``resnet50``, ``vgg16``, any timm name) read local weights files in the published layouts
of CoralNet/pyspacer and BenthicNet. See docs/extractors.md.
"""

from quadrat.extractors.backbones import TorchExtractor
from quadrat.extractors.base import Extractor, ExtractorConfig
from quadrat.extractors.registry import create_extractor, list_extractors, register_extractor
from quadrat.extractors.texture import TextureExtractor

__all__ = [
    "Extractor",
    "ExtractorConfig",
    "TextureExtractor",
    "TorchExtractor",
    "create_extractor",
    "list_extractors",
    "register_extractor",
]
