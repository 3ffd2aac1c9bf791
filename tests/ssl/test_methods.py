from __future__ import annotations

import pytest
import torch

from quadrat.errors import InputError
from quadrat.extractors.timm_utils import headless as create_backbone
from quadrat.ssl.methods import build_method, list_methods
from tests.ssl.conftest import tiny_config

METHODS = ["barlow_twins", "byol", "moco", "simsiam"]


def test_registry_lists_every_method() -> None:
    assert list_methods() == METHODS
    with pytest.raises(InputError, match="unknown method 'dino'"):
        build_method("dino", torch.nn.Identity(), 8, tiny_config().head)


@pytest.mark.parametrize("name", METHODS)
def test_a_few_steps_lower_nothing_to_nan_and_train_the_backbone(name: str) -> None:
    torch.manual_seed(0)
    config = tiny_config(name)
    backbone, dim = create_backbone(config.backbone)
    method = build_method(name, backbone, dim, config.head)
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05)
    before = [p.detach().clone() for p in method.backbone.parameters()]
    teacher = getattr(method, "teacher_backbone", None)
    teacher_before = None if teacher is None else next(teacher.parameters()).detach().clone()
    for step in range(2):
        view0, view1 = torch.randn(2, 6, 3, 32, 32).unbind(0)
        loss, features = method.training_loss(view0, view1)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert features.shape == (6, dim)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.step_end(step, 2)
    after = list(method.backbone.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    if teacher is not None and teacher_before is not None:  # momentum: teacher follows
        assert not any(p.requires_grad for p in teacher.parameters())
        assert not torch.equal(teacher_before, next(teacher.parameters()))
