"""Extractor names, in the spirit of timm's model registry.

What ``create_extractor(name, ...)`` accepts as ``name``, the one place that says so:

1. a registered name (:func:`list_extractors`): ``texture`` and the CNNs of
   :mod:`.networks`, each registered by ``@register_extractor`` where it is defined;
2. ``timm:<model>``: any timm architecture (:data:`TIMM_PREFIX`, explicit: a bare timm
   name is not guessed);
3. the path of a ``quadrat pretrain`` output, ending in one of :data:`BACKBONE_SUFFIXES`
   (``backbone.safetensors`` or a ``.ckpt``), which names its own network.

A factory is called as ``factory(weights, random_weights=..., device=..., batch_size=...,
**options)``. Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quadrat._registry import Registry

if TYPE_CHECKING:
    from quadrat.extractors.base import Extractor

Factory = Callable[..., "Extractor"]

#: Every registered extractor factory.
EXTRACTORS: Registry[Factory] = Registry("extractor")
#: Prefix of explicit timm names: ``timm:convnext_tiny``.
TIMM_PREFIX = "timm:"
#: A name ending so is a path to a self-describing backbone file (``quadrat pretrain``).
BACKBONE_SUFFIXES = (".safetensors", ".ckpt")


def register_extractor(name: str) -> Callable[[Any], Any]:
    """Decorator: make a factory available to ``create_extractor`` as ``name``."""
    return EXTRACTORS.register(name)


def list_extractors(pattern: str | None = None) -> list[str]:
    """Registered extractor names, sorted, optionally filtered by an fnmatch pattern."""
    return EXTRACTORS.list(pattern)


__all__ = [
    "BACKBONE_SUFFIXES",
    "EXTRACTORS",
    "TIMM_PREFIX",
    "Factory",
    "list_extractors",
    "register_extractor",
]
