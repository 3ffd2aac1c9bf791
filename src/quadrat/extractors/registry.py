"""Extractors by name, in the spirit of timm's model registry.

A factory is registered under a name and called as ``factory(weights, device=...,
batch_size=..., **kwargs)``. Names that are not registered but are timm model names
(``timm:convnext_tiny`` or plain ``convnext_tiny``) build that timm network.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import timm

from quadrat.errors import InputError, WeightsError
from quadrat.extractors import backbones
from quadrat.extractors.base import Extractor
from quadrat.extractors.texture import TextureExtractor
from quadrat.extractors.weights import from_solo_learn, keep_prefixed, read_backbone_config

Factory = Callable[..., Extractor]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
TIMM_PREFIX = "timm:"
#: A name ending so is a path to a self-describing backbone file (``quadrat pretrain``).
BACKBONE_SUFFIXES = (".safetensors", ".ckpt")


def register_extractor(name: str) -> Callable[[F], F]:
    """Decorator: make ``factory`` available to :func:`create_extractor` as ``name``."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"extractor {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def list_extractors(pattern: str | None = None) -> list[str]:
    """Registered extractor names, sorted, optionally filtered by an fnmatch pattern."""
    names = sorted(_REGISTRY)
    return names if pattern is None else fnmatch.filter(names, pattern)


def create_extractor(
    name: str,
    weights: str | Path | None = None,
    *,
    device: str = "cpu",
    batch_size: int = 32,
    **kwargs: Any,
) -> Extractor:
    """Build the extractor ``name`` with ``weights`` (a local file; None = weights-free/random).

    ``name`` may also be the path of a ``quadrat pretrain`` output (``backbone.safetensors``
    or a ``.ckpt``), which names its own network and normalisation.
    ``kwargs`` go to the factory: for CNNs ``channels_last`` (default True),
    ``autocast_bf16`` (default False, exact), ``runtime`` (``eager``, ``compile`` or
    ``openvino``; see :mod:`quadrat.extractors.runtimes`) and ``seed`` (random weights).
    """
    if batch_size < 1:
        raise InputError("batch_size must be at least 1", value=batch_size)
    if name in _REGISTRY:
        return _REGISTRY[name](weights, device=device, batch_size=batch_size, **kwargs)
    timm_name = name.removeprefix(TIMM_PREFIX)
    if timm.is_model(timm_name):
        return backbones.any_timm(
            timm_name, weights, device=device, batch_size=batch_size, **kwargs
        )
    if Path(name).suffix in BACKBONE_SUFFIXES:
        return _from_backbone_file(Path(name), weights, device, batch_size, **kwargs)
    raise InputError(
        f"unknown extractor {name!r}: use one of {', '.join(list_extractors())} "
        f"or a timm model name (timm:<name>)",
        value=name,
    )


def _from_backbone_file(
    path: Path, weights: str | Path | None, device: str, batch_size: int, **kwargs: Any
) -> Extractor:
    """A ``quadrat pretrain`` file by path: the file itself names its network and inputs."""
    if weights is not None:
        raise InputError(f"{path}: a backbone file by path takes no separate weights",
                         value=weights)
    config = read_backbone_config(path)
    if not timm.is_model(config.model):
        raise WeightsError(f"{path}: unknown timm model {config.model!r}")
    seed = kwargs.pop("seed", 0)
    model = backbones.seeded(backbones.timm_model(config.model), seed)
    feature_dim: int = getattr(model, "head_hidden_size", 0) or getattr(model, "num_features", 0)
    return backbones.build_extractor(
        f"{config.method or 'pretrained'}:{config.model}",
        model,
        feature_dim=feature_dim,
        weights=path,
        layouts={"timm": keep_prefixed(config.key_prefix), "solo_learn": from_solo_learn},
        mean=config.mean,
        std=config.std,
        seed=seed,
        device=device,
        batch_size=batch_size,
        **kwargs,
    )


@register_extractor("texture")
def texture(weights: str | Path | None = None, **options: Any) -> Extractor:
    """The weights-free colour/texture descriptor (the default)."""
    if weights is not None:
        raise WeightsError(f"{weights}: the texture extractor takes no weights file")
    return TextureExtractor(**options)


register_extractor("efficientnet_b0")(backbones.efficientnet_b0)
register_extractor("resnet50")(backbones.resnet50)
register_extractor("benthicnet_resnet50")(backbones.benthicnet_resnet50)
register_extractor("vgg16")(backbones.vgg16)
