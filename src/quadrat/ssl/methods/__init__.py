"""Self-supervised methods by name: each a short module of lightly's heads and losses.

A method owns the backbone it trains plus its heads (and momentum copies); the training
loop only calls :meth:`SSLMethod.training_loss` and :meth:`SSLMethod.step_end`, so adding a
method is one file with one ``@register_method`` class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from quadrat.errors import InputError
from quadrat.ssl.config import MethodConfig
from quadrat.ssl.methods.base import SSLMethod

M = TypeVar("M", bound=type[SSLMethod])
_METHODS: dict[str, type[SSLMethod]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Decorator: make a method class available to :func:`build_method` as ``name``."""

    def decorate(cls: M) -> M:
        _METHODS[name] = cls
        return cls

    return decorate


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_METHODS)


def build_method(
    name: str, backbone: nn.Module, feature_dim: int, config: MethodConfig
) -> SSLMethod:
    """The method ``name`` around ``backbone`` (whose forward returns pooled features)."""
    if name not in _METHODS:
        raise InputError(
            f"unknown method {name!r}: use one of {', '.join(list_methods())}", value=name
        )
    return _METHODS[name](backbone, feature_dim, config)


for _module in ("barlow_twins", "simsiam", "byol", "moco"):
    importlib.import_module(f"quadrat.ssl.methods.{_module}")

__all__ = ["SSLMethod", "build_method", "list_methods", "register_method"]
