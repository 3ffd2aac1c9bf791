"""Hand a pretrained backbone to the workflow as a ``quadrat-backbone/1`` file.

The format (and its reader) lives in :mod:`quadrat.extractors.backbone_file`; this module
only says which backbone, feature size and normalisation a pretraining run produced, so
``create_extractor("run/backbone.safetensors")`` rebuilds the exact extractor.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from quadrat.errors import WeightsError
from quadrat.extractors import backbone_file, checkpoints
from quadrat.extractors.timm_utils import headless
from quadrat.ssl.config import SSLConfig


def backbone_config(config: SSLConfig, feature_dim: int) -> backbone_file.BackboneConfig:
    """What a backbone file says about the network ``config`` pretrained."""
    return backbone_file.BackboneConfig(
        model=config.backbone,
        mean=config.augment.mean,
        std=config.augment.std,
        method=config.method,
        feature_dim=feature_dim,
        input_size=config.augment.image_size,
    )


def export_backbone(
    backbone: nn.Module, config: SSLConfig, feature_dim: int, path: str | Path
) -> Path:
    """Write a trained ``backbone`` and what ``config`` says about it to ``path`` (atomically)."""
    return backbone_file.write(backbone.state_dict(), backbone_config(config, feature_dim), path)


def export_checkpoint(checkpoint: str | Path, path: str | Path) -> Path:
    """A ``quadrat pretrain`` Lightning checkpoint (``last.ckpt``) as a backbone file."""
    checkpoint = Path(checkpoint)
    # The allow-listed loader: a hostile file is a WeightsError naming its globals.
    raw = checkpoints.load_checkpoint(checkpoint)
    hparams = raw.get("hyper_parameters", {}) if isinstance(raw, dict) else {}
    if "config" not in hparams:
        raise WeightsError("not a quadrat pretraining checkpoint (no config)", path=checkpoint)
    config = SSLConfig.from_dict(hparams["config"], where=str(checkpoint))
    state = backbone_file.pretrain_backbone_state(checkpoint)
    _, feature_dim = headless(config.backbone)
    return backbone_file.write(state, backbone_config(config, feature_dim), path)


__all__ = ["backbone_config", "export_backbone", "export_checkpoint"]
