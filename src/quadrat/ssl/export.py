"""Hand a pretrained backbone to the engine: a safetensors file that carries its config.

The file holds the backbone's state dict in timm names plus metadata (timm model name,
feature size, input size, normalisation, method), so
``create_extractor("run/backbone.safetensors")`` rebuilds the exact extractor with no
other argument. Safetensors, not a pickle: loading it runs no code, and the metadata is
readable without loading any tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import safetensors.torch
import torch

from quadrat.errors import WeightsError
from quadrat.extractors.weights import BACKBONE_FORMAT, read_state_dict
from quadrat.io.atomic import atomic_path

if TYPE_CHECKING:
    from quadrat.ssl.train import SSLModule


def backbone_metadata(
    *,
    model: str,
    feature_dim: int,
    input_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    method: str,
) -> dict[str, str]:
    """The string metadata :func:`quadrat.extractors.weights.read_backbone_config` reads."""
    return {
        "format": BACKBONE_FORMAT,
        "timm_model": model,
        "feature_dim": str(feature_dim),
        "input_size": str(input_size),
        "mean": json.dumps(list(mean)),
        "std": json.dumps(list(std)),
        "method": method,
    }


def export_backbone(module: SSLModule, path: str | Path) -> Path:
    """Write ``module``'s backbone and config to ``path`` (atomically)."""
    config = module.config
    metadata = backbone_metadata(
        model=config.backbone,
        feature_dim=module.method.feature_dim,
        input_size=config.augment.image_size,
        mean=config.augment.mean,
        std=config.augment.std,
        method=config.method,
    )
    return write_backbone(module.backbone.state_dict(), metadata, path)


def export_checkpoint(checkpoint: str | Path, path: str | Path) -> Path:
    """A ``quadrat pretrain`` Lightning checkpoint (``last.ckpt``) as a backbone file."""
    from quadrat.ssl.config import SSLConfig
    from quadrat.ssl.train import create_backbone

    checkpoint = Path(checkpoint)
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = raw.get("hyper_parameters", {}) if isinstance(raw, dict) else {}
    if "config" not in hparams:
        raise WeightsError(f"{checkpoint}: not a quadrat pretraining checkpoint (no config)")
    config = SSLConfig.from_dict(hparams["config"], where=str(checkpoint))
    prefix = "method.backbone."
    state = {k[len(prefix):]: v for k, v in read_state_dict(checkpoint).items()
             if k.startswith(prefix)}
    _, feature_dim = create_backbone(config.backbone)
    metadata = backbone_metadata(
        model=config.backbone,
        feature_dim=feature_dim,
        input_size=config.augment.image_size,
        mean=config.augment.mean,
        std=config.augment.std,
        method=config.method,
    )
    return write_backbone(state, metadata, path)


def write_backbone(
    state_dict: dict[str, torch.Tensor], metadata: dict[str, str], path: str | Path
) -> Path:
    """Save tensors (contiguous CPU copies; BN counters included) and metadata atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=metadata)
    return path
