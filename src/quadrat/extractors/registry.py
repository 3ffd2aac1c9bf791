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

Factory = Callable[..., Extractor]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
TIMM_PREFIX = "timm:"


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

    ``kwargs`` go to the factory: for CNNs ``channels_last`` (default True),
    ``autocast_bf16`` (default False, exact) and ``seed`` (random weights).
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
    raise InputError(
        f"unknown extractor {name!r}: use one of {', '.join(list_extractors())} "
        f"or a timm model name (timm:<name>)",
        value=name,
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
