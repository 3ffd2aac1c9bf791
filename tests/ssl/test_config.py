from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quadrat.errors import InputError
from quadrat.ssl.config import SSLConfig, load_config, save_config


def test_defaults_are_benthicnets_barlow_twins() -> None:
    config = SSLConfig()
    assert (config.method, config.backbone, config.epochs) == ("barlow_twins", "resnet50", 100)
    assert config.head.projector_hidden_dim == config.head.projector_output_dim == 8192
    assert (config.head.lambda_param, config.head.loss_scale) == (5e-3, 0.024)
    assert (config.optim.name, config.optim.lr, config.optim.momentum) == ("sgd", 2e-3, 0.0)
    assert (config.optim.weight_decay, config.optim.warmup_epochs) == (1.5e-6, 10)
    assert config.augment.crop_scale == (0.1, 1.0)
    assert config.augment.mean == (0.3587, 0.4130, 0.3858)


def test_each_method_has_its_spec_heads() -> None:
    byol = SSLConfig.for_method("byol")
    assert (byol.head.projector_hidden_dim, byol.head.projector_output_dim) == (4096, 256)
    assert (byol.optim.name, byol.optim.lr) == ("lars", 0.05)
    simsiam = SSLConfig.for_method("simsiam")
    assert (simsiam.head.projector_output_dim, simsiam.head.predictor_hidden_dim) == (2048, 512)
    moco = SSLConfig.for_method("moco")
    assert (moco.head.projector_output_dim, moco.head.temperature) == (128, 0.1)
    assert moco.head.queue_size == 65536


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = SSLConfig.for_method("moco", epochs=3, augment={"blur_sigma": [0.2, 1.5]})
    save_config(config, tmp_path / "cfg.yaml")
    assert load_config(tmp_path / "cfg.yaml") == config


def test_partial_yaml_takes_method_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"method": "byol", "optim": {"lr": 0.1}}))
    config = load_config(path, epochs=7)
    assert (config.method, config.head.projector_output_dim) == ("byol", 256)
    assert (config.optim.lr, config.optim.name, config.epochs) == (0.1, "lars", 7)
    assert load_config(path, method="simsiam").head.predictor_hidden_dim == 512


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optim:\n  lrr: 0.1\n", "unknown setting 'optim.lrr'"),
        ("epochs: many\n", "epochs must be a number"),
        ("epochs: 1.5\n", "epochs must be a whole number"),
        ("optim:\n  name: adam\n", "optim.name must be one of"),
        ("method: dino\n", "unknown method 'dino'"),
        ("augment:\n  crop_scale: [0.1]\n", "must be a list of 2 numbers"),
        ("batch_size: 0\n", "batch_size must be at least 1"),
    ],
)
def test_bad_settings_name_the_file_and_setting(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("epochs: 3\noptim: [unclosed\n")
    with pytest.raises(InputError, match=r"broken.yaml, line \d"):
        load_config(path)
