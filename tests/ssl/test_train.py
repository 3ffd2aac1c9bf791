"""Lightning runs of a few steps on tiny images: every method, data kind, resume, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from quadrat.errors import ConflictError
from quadrat.extractors import create_extractor
from quadrat.extractors.timm_utils import headless as create_backbone
from quadrat.ssl.export import export_checkpoint
from quadrat.ssl.train import pretrain
from tests.ssl.conftest import tiny_config


def _patches(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("method", "kind"),
    # Barlow Twins on a folder tree runs in the resume test below.
    [("simsiam", "shards"), ("byol", "photos"), ("moco", "shards")],
)
@pytest.mark.slow
def test_each_method_pretrains_and_exports(
    method: str, kind: str, ssl_inputs: dict[str, Path], tmp_path: Path
) -> None:
    config = tiny_config(method, max_steps=2)
    backbone = pretrain(config, ssl_inputs[kind], tmp_path / "run", kind=kind)  # type: ignore[arg-type]
    metrics = pd.read_csv(tmp_path / "run" / "logs" / "version_0" / "metrics.csv")
    losses = metrics["train/loss"].dropna()
    assert len(losses) == 2 and np.isfinite(losses).all()
    if kind != "photos":  # folder and shards carry labels: the online probe reports
        assert metrics["train/probe_acc"].dropna().between(0, 1).all()
    extractor = create_extractor(str(backbone))
    features = extractor.extract(_patches())
    assert features.shape == (3, extractor.feature_dim) == (3, create_backbone("test_resnet")[1])
    assert extractor.config.mean == tuple(config.augment.mean)
    assert extractor.config.name == f"{method}:test_resnet"


@pytest.mark.slow
def test_resume_continues_and_a_finished_run_is_not_overwritten(
    ssl_inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(max_steps=2, epochs=3), ssl_inputs["folder"], out)
    probe = pd.read_csv(out / "logs" / "version_0" / "metrics.csv")["train/probe_acc"].dropna()
    assert len(probe) == 2 and probe.between(0, 1).all()  # labels from the folder names
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    with pytest.raises(ConflictError, match=r"resume=True") as caught:
        pretrain(tiny_config(max_steps=4, epochs=3), ssl_inputs["folder"], out)
    assert caught.value.param == "resume" and "--" not in str(caught.value)
    pretrain(tiny_config(max_steps=4, epochs=3), ssl_inputs["folder"], out, resume=True)
    assert torch.load(last, weights_only=True)["global_step"] == 4
    first, second = (pd.read_csv(out / "logs" / f"version_{v}" / "metrics.csv") for v in (0, 1))
    assert first["step"].max() == 1 and second["step"].min() == 2  # logs kept, steps go on

    # The Lightning checkpoint works by path too, and gives the exported backbone's features.
    from_ckpt = create_extractor(str(last)).extract(_patches())
    from_file = create_extractor(str(out / "backbone.safetensors")).extract(_patches())
    np.testing.assert_allclose(from_ckpt, from_file, rtol=1e-5, atol=1e-6)
    again = export_checkpoint(last, tmp_path / "again.safetensors")
    np.testing.assert_allclose(
        create_extractor(str(again)).extract(_patches()), from_file, rtol=1e-5, atol=1e-6
    )


@pytest.mark.shared_data
@pytest.mark.slow
def test_pretrains_on_real_rov_patches(shared_data: Path, tmp_path: Path) -> None:
    """Real JPEGs of mixed sizes, 25 class folders: two steps, the probe sees 25 classes."""
    patches = shared_data / "seattle-rov-patches" / "patches"
    backbone = pretrain(tiny_config(max_steps=2), patches, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["state_dict"]["probe.weight"].shape[0] == 25
    assert create_extractor(str(backbone)).extract(_patches(1)).shape[0] == 1
