"""timm networks without their classifier: the one place that builds them.

Extractors (by name, ``timm:<model>`` or a backbone file) and SSL pretraining all train or
read the same headless network, so its construction and feature size are computed here.
``pretrained=False`` always: quadrat never downloads weights behind the user's back.
"""

from __future__ import annotations

import timm
import timm.data
from torch import nn

from quadrat.errors import InputError

RGB = tuple[float, float, float]


def is_model(name: str) -> bool:
    """Whether timm knows the architecture ``name``."""
    return bool(timm.is_model(name))


def headless(name: str) -> tuple[nn.Module, int]:
    """timm's ``name`` with ``num_classes=0`` (forward gives pooled features), and their size.

    The size is that of the pooled output: ``num_features`` is the size before any
    pre-logits layer, ``head_hidden_size`` after it where a model has one.
    """
    if not is_model(name):
        raise InputError(f"unknown timm model {name!r}", value=name)
    model = timm.create_model(name, pretrained=False, num_classes=0)
    feature_dim: int = getattr(model, "head_hidden_size", 0) or getattr(model, "num_features", 0)
    return model, int(feature_dim)


def normalisation(model: nn.Module) -> tuple[RGB, RGB]:
    """The (mean, std) of ``model``'s pretrained config (ImageNet's for most networks)."""
    data = timm.data.resolve_data_config({}, model=model)
    mean, std = tuple(data["mean"]), tuple(data["std"])
    return mean, std


def classifier_prefix(model: nn.Module) -> str:
    """Key prefix of the classifier that weights files may carry (``"fc."``), or ``""``."""
    classifier = str(getattr(model, "pretrained_cfg", {}).get("classifier") or "")
    return f"{classifier}." if classifier else ""


__all__ = ["classifier_prefix", "headless", "is_model", "normalisation"]
