"""Backbones into the workflow: by path (quadrat's files) and by name + weights (solo-learn's)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from quadrat.errors import WeightsError
from quadrat.extractors import backbone_file, create_extractor
from quadrat.extractors.timm_utils import headless as create_backbone


def _patches() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)


def _exported(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    model, dim = create_backbone("test_resnet")
    state = model.state_dict()
    config = backbone_file.BackboneConfig(
        model="test_resnet",
        feature_dim=dim,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        method="byol",
    )
    path = backbone_file.write(state, config, tmp_path / "backbone.safetensors")
    assert backbone_file.read_config(path) == config  # what is written is what is read
    return path, state


def _solo_learn_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """What BenthicNet publishes: a Lightning checkpoint, the network under ``backbone.``,
    beside projector and momentum copies, and the training config as omegaconf objects."""
    omegaconf = pytest.importorskip("omegaconf")
    state_dict = {f"backbone.{k}": v for k, v in state.items()}
    state_dict |= {f"momentum_backbone.{k}": v.clone() for k, v in state.items()}
    state_dict["projector.0.weight"] = torch.zeros(8, 96)
    config = omegaconf.OmegaConf.create({"method": "barlow_twins", "backbone": {"name": "x"}})
    torch.save(
        {
            "epoch": 399,
            "global_step": 10,
            "pytorch-lightning_version": "1.6.0",
            "state_dict": state_dict,
            "hyper_parameters": {"cfg": config},
        },
        path,
    )
    return path


def test_exported_backbone_loads_by_path_with_its_config(tmp_path: Path) -> None:
    path, state = _exported(tmp_path)
    extractor = create_extractor(str(path))
    assert extractor.config.name == "byol:test_resnet"
    assert (extractor.config.mean, extractor.config.std) == ((0.5,) * 3, (0.25,) * 3)
    model, _ = create_backbone("test_resnet")
    model.load_state_dict(state)
    x = (torch.from_numpy(_patches()).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    expected = model.eval()(x).detach().numpy()
    np.testing.assert_allclose(extractor.extract(_patches()), expected, rtol=1e-4, atol=1e-5)


def test_solo_learn_checkpoint_loads_by_name_and_weights(tmp_path: Path) -> None:
    path, state = _exported(tmp_path)
    solo = _solo_learn_checkpoint(tmp_path / "benthicnet.ckpt", state)
    features = create_extractor("timm:test_resnet", weights=solo).extract(_patches())
    reference = create_extractor("timm:test_resnet", weights=path).extract(_patches())
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-6)
    # By path it cannot know the network (solo-learn's config is not read): say what to do.
    with pytest.raises(WeightsError, match="name its network instead"):
        create_extractor(str(solo))


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    _, state = _exported(tmp_path)
    state_dict = {f"backbone.{k}": v for k, v in state.items()}
    for zipped in (True, False):
        path = tmp_path / f"hostile-{zipped}.ckpt"
        torch.save(
            {"state_dict": state_dict, "payload": Payload()},
            path,
            _use_new_zipfile_serialization=zipped,
        )
        with pytest.raises(WeightsError, match="refused"):
            create_extractor("timm:test_resnet", weights=path)
        assert not marker.exists()


def test_a_file_without_quadrat_metadata_is_refused_by_path(tmp_path: Path) -> None:
    import safetensors.torch

    plain = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(WeightsError, match="no quadrat backbone metadata"):
        create_extractor(str(plain))
    with pytest.raises(WeightsError, match="not found"):
        create_extractor(str(tmp_path / "missing.safetensors"))
