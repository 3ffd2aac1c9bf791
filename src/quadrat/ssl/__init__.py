"""Self-supervised pretraining (Barlow Twins, SimSiam, BYOL, MoCo v2+) on Lightning.

``pretrain(config, data, out)`` trains a timm backbone on unlabelled seafloor images and
writes ``out/backbone.safetensors``, which ``create_extractor(path)`` loads by path.
See docs/ssl.md.
"""

from quadrat.ssl.config import SSLConfig, load_config, save_config
from quadrat.ssl.export import export_checkpoint
from quadrat.ssl.methods import build_method, list_methods
from quadrat.ssl.train import pretrain

__all__ = [
    "SSLConfig",
    "build_method",
    "export_checkpoint",
    "list_methods",
    "load_config",
    "pretrain",
    "save_config",
]
