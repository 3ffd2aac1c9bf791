"""The ``quadrat-backbone/1`` file: a pretrained backbone that says what network it is.

``quadrat pretrain`` writes ``backbone.safetensors``: the backbone's state dict in timm
names plus string metadata (timm model, feature size, input size, normalisation, method),
so ``create_extractor("run/backbone.safetensors")`` rebuilds the exact extractor with no
other argument. Safetensors, not a pickle: loading runs no code, and the metadata is
readable without loading a tensor. A pretraining checkpoint (``last.ckpt``) describes its
backbone too, by its saved config; the backbone's keys there start with
:data:`PRETRAIN_PREFIX`. This module is the one place that reads *and* writes both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from quadrat.errors import WeightsError
from quadrat.extractors.checkpoints import (
    StateDict,
    existing_file,
    load_checkpoint,
    read_state_dict,
)
from quadrat.io.atomic import atomic_path

#: ``format`` metadata of a backbone file.
BACKBONE_FORMAT = "quadrat-backbone/1"
#: Where a ``quadrat pretrain`` Lightning checkpoint keeps its backbone's keys.
PRETRAIN_PREFIX = "method.backbone."
# What a pretraining checkpoint that lacks augment settings was trained with.
_DEFAULT_MEAN = (0.485, 0.456, 0.406)
_DEFAULT_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneConfig:
    """What a self-describing weights file says about the network it holds.

    ``key_prefix``: where the backbone's keys sit in the file ("" in a backbone file,
    :data:`PRETRAIN_PREFIX` in a pretraining checkpoint).
    """

    model: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    method: str = ""
    feature_dim: int = 0
    input_size: int = 224
    key_prefix: str = ""

    def metadata(self) -> dict[str, str]:
        """The string metadata written into a backbone file."""
        return {
            "format": BACKBONE_FORMAT,
            "timm_model": self.model,
            "feature_dim": str(self.feature_dim),
            "input_size": str(self.input_size),
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "method": self.method,
        }


def read_config(path: str | Path) -> BackboneConfig:
    """The network a ``quadrat pretrain`` file holds: an exported ``.safetensors`` (its
    metadata) or a Lightning checkpoint (its saved config); WeightsError for anything else."""
    path = existing_file(path)
    if path.suffix == ".safetensors":
        return _safetensors_config(path)
    config = pretrain_config(path)
    if config is None:
        raise WeightsError(
            "not a quadrat pretraining checkpoint; name its network instead, e.g. "
            "create_extractor('benthicnet_resnet50', weights=path) for BenthicNet's",
            path=path,
        )
    augment = config.get("augment", {})
    return BackboneConfig(
        model=str(config["backbone"]),
        mean=tuple(augment.get("mean", _DEFAULT_MEAN)),
        std=tuple(augment.get("std", _DEFAULT_STD)),
        method=str(config.get("method", "")),
        input_size=int(augment.get("image_size", 224)),
        key_prefix=PRETRAIN_PREFIX,
    )


def pretrain_config(path: Path) -> Mapping[str, Any] | None:
    """The SSL config dict saved in a pretraining checkpoint, or None if it holds none."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    config = hparams.get("config") if isinstance(hparams, Mapping) else None
    if not isinstance(config, Mapping) or "backbone" not in config:
        return None
    return config


def _safetensors_config(path: Path) -> BackboneConfig:
    try:
        with safetensors.safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
    except Exception as error:  # the library raises several types
        raise WeightsError(f"not a valid safetensors file ({error})", path=path) from error
    if meta.get("format") != BACKBONE_FORMAT:
        raise WeightsError(
            "no quadrat backbone metadata; name its network instead, "
            "e.g. create_extractor('resnet50', weights=path)",
            path=path,
        )
    try:
        return BackboneConfig(
            model=meta["timm_model"],
            mean=tuple(json.loads(meta["mean"])),
            std=tuple(json.loads(meta["std"])),
            method=meta.get("method", ""),
            feature_dim=int(meta.get("feature_dim", 0)),
            input_size=int(meta.get("input_size", 224)),
        )
    except (KeyError, ValueError) as error:
        raise WeightsError(f"damaged backbone metadata ({error})", path=path) from error


def pretrain_backbone_state(path: str | Path) -> StateDict:
    """The backbone's tensors of a pretraining checkpoint, in timm names (prefix removed)."""
    prefix = PRETRAIN_PREFIX
    state = read_state_dict(path)
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def write(state_dict: Mapping[str, torch.Tensor], config: BackboneConfig, path: str | Path) -> Path:
    """Save tensors (contiguous CPU copies; BN counters included) and metadata atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=config.metadata())
    return path


__all__ = [
    "BACKBONE_FORMAT",
    "PRETRAIN_PREFIX",
    "BackboneConfig",
    "pretrain_backbone_state",
    "pretrain_config",
    "read_config",
    "write",
]
