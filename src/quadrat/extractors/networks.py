"""The registered CNNs, each decorated where it is defined, plus timm and backbone files.

Importing this module imports neither torch nor timm: each factory imports the torch
parts (:mod:`.torch_extractor`, :mod:`.timm_utils`, :mod:`.layouts`) when it runs, so
``list_extractors()`` and the ``texture`` extractor work without the ``cnn`` extra, and a
CNN asked for without it is a :class:`~quadrat.errors.MissingDependencyError`.

A CNN needs weights: a local weights file, or a backbone file by path. Random weights
are for benchmarks and tests and must be asked for (``random_weights=True``): features of
a random network are a floor, not a baseline (the texture extractor beats them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError, WeightsError, missing_dependency
from quadrat.extractors.base import RGB
from quadrat.extractors.registry import register_extractor

if TYPE_CHECKING:
    from torch import nn

    from quadrat.extractors.torch_extractor import TorchExtractor

IMAGENET_MEAN: RGB = (0.485, 0.456, 0.406)
IMAGENET_STD: RGB = (0.229, 0.224, 0.225)
#: BenthicNet's normalisation for its unlabelled pretraining set (see specs/benthicnet.md).
BENTHICNET_MEAN: RGB = (0.3587, 0.4130, 0.3858)
BENTHICNET_STD: RGB = (0.2186, 0.2145, 0.2089)

#: Top-level modules of the ``cnn`` extra.
_CNN_MODULES = ("torch", "torchvision", "timm", "safetensors", "openvino")


def check_weights(name: str, weights: str | Path | None, random_weights: bool) -> None:
    """Refuse a CNN without weights unless random weights were asked for on purpose."""
    if weights is not None and random_weights:
        raise InputError(
            f"{name}: give either weights or random_weights, not both",
            value=str(weights),
            param="random_weights",
        )
    if weights is None and not random_weights:
        raise WeightsError(
            f"the CNN extractor {name!r} needs weights: give a local weights file "
            "(parameter weights), or use a backbone pretrained by `quadrat pretrain` by "
            "giving the path of its backbone.safetensors as the extractor name; to run "
            "seeded random weights on purpose (benchmarks, tests), set random_weights",
            value=name,
            param="weights",
        )


def torch_parts(purpose: str) -> ModuleType:
    """:mod:`.torch_extractor` (imports torch and timm), or MissingDependencyError."""
    try:
        from quadrat.extractors import torch_extractor
    except ImportError as exc:
        missing = (exc.name or "torch").split(".")[0]
        if missing not in _CNN_MODULES:
            raise
        raise missing_dependency(missing, "cnn", purpose=purpose) from exc
    return torch_extractor


def _cnn(name: str, weights: str | Path | None, random_weights: bool) -> ModuleType:
    parts = torch_parts(f"the CNN extractor {name!r}")
    check_weights(name, weights, random_weights)
    return parts


def _timm(model_name: str) -> nn.Module:
    from quadrat.extractors.timm_utils import headless

    return headless(model_name)[0]


@register_extractor("efficientnet_b0")
def efficientnet_b0(
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """CoralNet 1.0's network: TF-padded EfficientNet-B0, 1280-d, input only scaled to [0, 1]."""
    parts = _cnn("efficientnet_b0", weights, random_weights)
    from quadrat.extractors import layouts

    return parts.build_extractor(
        "efficientnet_b0",
        parts.seeded(lambda: _timm("tf_efficientnet_b0"), seed),
        feature_dim=1280,
        weights=weights,
        layouts={
            "timm": dict,
            "pyspacer_efficientnet": layouts.from_pyspacer_efficientnet,
            "solo_learn": layouts.from_solo_learn,
        },
        head_prefixes=("classifier.",),
        seed=seed,
        **options,
    )


def _resnet50(
    name: str,
    mean: RGB,
    std: RGB,
    weights: str | Path | None,
    random_weights: bool,
    seed: int,
    options: Mapping[str, Any],
) -> TorchExtractor:
    parts = _cnn(name, weights, random_weights)
    from quadrat.extractors import layouts

    return parts.build_extractor(
        name,
        parts.seeded(lambda: _timm("resnet50"), seed),
        feature_dim=2048,
        weights=weights,
        layouts={"timm": dict, "solo_learn": layouts.from_solo_learn},
        head_prefixes=("fc.",),
        mean=mean,
        std=std,
        seed=seed,
        **options,
    )


@register_extractor("resnet50")
def resnet50(
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """BenthicNet's backbone (ResNet-50, 2048-d) with ImageNet normalisation."""
    return _resnet50(
        "resnet50", IMAGENET_MEAN, IMAGENET_STD, weights, random_weights, seed, options
    )


@register_extractor("benthicnet_resnet50")
def benthicnet_resnet50(
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """ResNet-50 normalised with BenthicNet's own statistics, as its probes feed it."""
    return _resnet50(
        "benthicnet_resnet50",
        BENTHICNET_MEAN,
        BENTHICNET_STD,
        weights,
        random_weights,
        seed,
        options,
    )


def _vgg16_fc7() -> nn.Module:
    import torchvision

    model = torchvision.models.vgg16(weights=None)
    model.classifier = model.classifier[:5]  # fc6, ReLU, Dropout, fc7, ReLU: Caffe's "fc7" blob
    return model


@register_extractor("vgg16")
def vgg16(
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """CoralNet Beta's network: VGG16 fc7 (4096-d) on BGR pixels in 0-255 minus 128."""
    parts = _cnn("vgg16", weights, random_weights)
    from quadrat.extractors import layouts

    return parts.build_extractor(
        "vgg16",
        parts.seeded(_vgg16_fc7, seed),
        feature_dim=4096,
        weights=weights,
        layouts={"timm": dict, "caffe_vgg16": layouts.from_caffe_vgg16},
        head_prefixes=("classifier.6.",),
        mean=(128.0, 128.0, 128.0),
        input_range=255.0,
        channel_order="BGR",
        seed=seed,
        **options,
    )


def any_timm(
    model_name: str,
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """Any timm network by name (``timm:<name>``), with its pretrained config's mean/std."""
    name = f"timm:{model_name}"
    parts = _cnn(name, weights, random_weights)
    from quadrat.extractors import layouts, timm_utils

    model, feature_dim = parts.seeded(lambda: timm_utils.headless(model_name), seed)
    mean, std = timm_utils.normalisation(model)
    prefix = timm_utils.classifier_prefix(model)
    return parts.build_extractor(
        name,
        model,
        feature_dim=feature_dim,
        weights=weights,
        layouts={"timm": dict, "solo_learn": layouts.from_solo_learn},
        head_prefixes=(prefix,) if prefix else (),
        mean=mean,
        std=std,
        seed=seed,
        **options,
    )


def from_backbone_file(
    path: Path,
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    seed: int = 0,
    **options: Any,
) -> TorchExtractor:
    """A ``quadrat pretrain`` file by path: the file itself names its network and inputs."""
    if weights is not None or random_weights:
        raise InputError(
            f"{path}: a backbone file by path carries its weights; give no other weights",
            value=str(weights) if weights is not None else True,
            param="weights" if weights is not None else "random_weights",
        )
    parts = torch_parts(f"the backbone file {path}")
    from quadrat.extractors import backbone_file, layouts, timm_utils

    config = backbone_file.read_config(path)
    if not timm_utils.is_model(config.model):
        raise WeightsError(f"unknown timm model {config.model!r}", path=path)
    model, feature_dim = parts.seeded(lambda: timm_utils.headless(config.model), seed)
    return parts.build_extractor(
        f"{config.method or 'pretrained'}:{config.model}",
        model,
        feature_dim=feature_dim,
        weights=path,
        layouts={
            "timm": layouts.keep_prefixed(config.key_prefix),
            "solo_learn": layouts.from_solo_learn,
        },
        mean=config.mean,
        std=config.std,
        seed=seed,
        **options,
    )


__all__ = [
    "BENTHICNET_MEAN",
    "BENTHICNET_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "any_timm",
    "benthicnet_resnet50",
    "check_weights",
    "efficientnet_b0",
    "from_backbone_file",
    "resnet50",
    "torch_parts",
    "vgg16",
]
