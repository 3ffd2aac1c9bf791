"""Fixtures for pyspacer parity: weights files in published layouts, photos and points.

- ``make_pyspacer_checkpoint(path)``: a random EfficientNet-B0 in pyspacer/CoralNet 1.0's
  layout (lukemelas names, ``module.`` prefix, ``{'net': state_dict}``, 1275-way ``_fc``),
  with BatchNorm statistics re-estimated on images so features are not ~1e-13.
  Built with timm and renamed by quadrat's inverse mapping: if the mapping were wrong,
  pyspacer (which reads the names its own way) would disagree with quadrat.
- ``make_solo_learn_checkpoint(path, model)``: a BenthicNet/solo-learn Lightning checkpoint.
- ``make_photos(root)``: a few seeded JPEGs with points, some at the image edges (so the
  reflect padding is exercised).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from torch import nn

from quadrat.extractors.layouts import to_pyspacer_efficientnet
from quadrat.extractors.torch_extractor import synthetic_patches

CORALNET_CLASSES = 1275


def random_efficientnet_b0(calibration: np.ndarray | None = None, seed: int = 0) -> nn.Module:
    """timm tf_efficientnet_b0 (no classifier) with seeded random weights, perturbed
    BatchNorm affine parameters and running statistics re-estimated on ``calibration``
    patches ((N, 224, 224, 3) uint8; default: quadrat's smooth synthetic images).

    Calibrate on patches like the ones compared: features then have the order of
    magnitude of a trained network's (about 1), where an absolute tolerance means what
    it says; on unlike images random networks blow up (std 10 or more).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model("tf_efficientnet_b0", num_classes=0)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.normal_(1.0, 0.1)
                    module.bias.normal_(0.0, 0.1)
    patches = (
        synthetic_patches(16, seed=seed + 1)
        if calibration is None
        else torch.from_numpy(calibration)
    )
    images = patches.permute(0, 3, 1, 2).float().div(255)
    torch.optim.swa_utils.update_bn([images], model)
    return model.eval()


def make_pyspacer_checkpoint(
    path: Path, calibration: np.ndarray | None = None, seed: int = 0
) -> nn.Module:
    """Write ``path`` in pyspacer's layout; return the timm model it was made from."""
    model = random_efficientnet_b0(calibration, seed)
    state = to_pyspacer_efficientnet(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    state["_fc.weight"] = torch.randn(CORALNET_CLASSES, 1280, generator=generator) * 0.01
    state["_fc.bias"] = torch.zeros(CORALNET_CLASSES)
    torch.save({"net": {f"module.{k}": v for k, v in state.items()}}, path)
    return model


def make_solo_learn_checkpoint(path: Path, model: nn.Module, seed: int = 0) -> None:
    """A solo-learn style checkpoint: backbone under ``backbone.``, plus the parts features
    ignore (projector, momentum backbone, online classifier) and non-tensor metadata."""
    generator = torch.Generator().manual_seed(seed)
    backbone = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    extra = {
        "projector.0.weight": torch.randn(64, model.num_features, generator=generator),
        "projector.0.bias": torch.zeros(64),
        "classifier.weight": torch.randn(10, model.num_features, generator=generator),
        "classifier.bias": torch.zeros(10),
        **{f"momentum_backbone.{k}": v.clone() for k, v in model.state_dict().items()},
    }
    torch.save({"epoch": 399, "global_step": 1000, "state_dict": {**backbone, **extra}}, path)


def make_photos(root: Path, seed: int = 0) -> list[tuple[Path, list[tuple[int, int]]]]:
    """Three JPEGs (sizes differ, odd and even) with 7 points each, edges included."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for k, (height, width) in enumerate([(300, 400), (361, 287), (480, 512)]):
        # Smooth colour fields plus fine texture: compresses like a photo, not like noise.
        coarse = rng.random((height // 40 + 2, width // 40 + 2, 3))
        smooth = np.kron(coarse, np.ones((40, 40, 1)))[:height, :width]
        fine = rng.normal(0, 0.08, (height, width, 3))
        pixels = np.clip((0.7 * smooth + 0.15 + fine) * 255, 0, 255).astype(np.uint8)
        path = root / f"photo_{k}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        points = [(0, 0), (height - 1, width - 1), (height // 2, width // 2), (5, width - 3)]
        points += [(int(rng.integers(0, height)), int(rng.integers(0, width))) for _ in range(3)]
        out.append((path, points))
    return out
