"""Self-supervised methods by name: each a short module of lightly's heads and losses.

A method owns the backbone it trains plus its heads (and momentum copies); the training
loop only calls :meth:`SSLMethod.training_loss` and :meth:`SSLMethod.step_end`. Adding a
method is one file with one ``@register_method`` class carrying its own defaults
(``head_defaults``, ``optim_defaults``), plus its import below.
"""

from __future__ import annotations

from torch import nn

from quadrat.ssl.config import MethodConfig
from quadrat.ssl.methods import barlow_twins, byol, moco, simsiam  # noqa: F401  (registers)
from quadrat.ssl.methods.base import METHODS, SSLMethod, register_method


def list_methods(pattern: str | None = None) -> list[str]:
    """Registered method names, sorted, optionally filtered by an fnmatch pattern."""
    return METHODS.list(pattern)


def build_method(
    name: str, backbone: nn.Module, feature_dim: int, config: MethodConfig
) -> SSLMethod:
    """The method ``name`` around ``backbone`` (whose forward returns pooled features)."""
    return METHODS.get(name)(backbone, feature_dim, config)


__all__ = ["METHODS", "SSLMethod", "build_method", "list_methods", "register_method"]
