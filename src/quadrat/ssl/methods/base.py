"""What every method provides to the training loop, and the registry of methods."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from quadrat._registry import Registry
from quadrat.ssl.config import MethodConfig, OptimConfig


class SSLMethod(nn.Module, ABC):
    """A backbone plus heads; ``training_loss`` turns two views into a scalar loss.

    ``head_defaults`` and ``optim_defaults`` are the method's own hyperparameters, which
    ``SSLConfig.for_method`` starts from.
    """

    head_defaults: ClassVar[MethodConfig] = MethodConfig()
    optim_defaults: ClassVar[OptimConfig] = OptimConfig()

    def __init__(self, backbone: nn.Module, feature_dim: int, config: MethodConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.config = config

    @abstractmethod
    def training_loss(
        self, view0: torch.Tensor, view1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, backbone features of ``view0``); features feed the online probe, detached."""

    def step_end(self, step: int, max_steps: int) -> None:
        """Called after each optimizer step (momentum updates); nothing by default."""


class MomentumMethod(SSLMethod):
    """A method with an exponential-moving-average teacher of backbone and projector.

    The teacher's momentum rises from ``momentum_start`` to ``momentum_end`` along a
    cosine over training, as in BYOL.
    """

    projector: nn.Module

    def make_teacher(self) -> None:
        """Copy backbone and projector as the frozen teacher (call after building heads)."""
        self.teacher_backbone = copy.deepcopy(self.backbone)
        self.teacher_projector = copy.deepcopy(self.projector)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_projector)

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher projections, float32, no gradient."""
        return self.teacher_projector(self.teacher_backbone(x)).float()

    def step_end(self, step: int, max_steps: int) -> None:
        momentum = cosine_schedule(
            step, max(max_steps, 1), self.config.momentum_start, self.config.momentum_end
        )
        update_momentum(self.backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.projector, self.teacher_projector, m=momentum)


#: Every SSL method class by name; ``@METHODS.register(name)`` where the class is defined.
METHODS: Registry[type[SSLMethod]] = Registry("method")
register_method = METHODS.register
