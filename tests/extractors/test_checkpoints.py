"""Checkpoints are read with weights_only=True only: the objects published layouts pickle
beside their tensors load, and a hostile pickle is refused on every load path, its code
never run."""

from __future__ import annotations

import argparse
import builtins
import os
import pathlib
import pickle
import re
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from quadrat.demo import DemoSurvey
from quadrat.errors import WeightsError
from quadrat.extractors import backbone_file, create_extractor
from quadrat.extractors.checkpoints import load_checkpoint, read_state_dict
from quadrat.extractors.timm_utils import headless

ROOT = Path(__file__).resolve().parents[2]
PATCHES = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A tiny timm network's weights (timm names)."""
    torch.manual_seed(3)
    model, _ = headless("test_resnet")
    return model.state_dict()


def _reference(state: dict[str, torch.Tensor], tmp_path: Path) -> np.ndarray:
    plain = tmp_path / "reference.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(plain))
    return create_extractor("timm:test_resnet", weights=plain).extract(PATCHES)


# --- what published layouts pickle loads ----------------------------------------------


def test_solo_learn_omegaconf_config_loads_unread(
    state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    """BenthicNet/solo-learn: the training config is omegaconf (nested, lists, None)."""
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create(
        {"method": "barlow_twins", "backbone": {"name": "resnet50", "kwargs": {}},
         "optimizer": {"lr": 0.3, "betas": [0.9, 0.99], "extra": None}, "flag": True}
    )  # fmt: skip
    path = tmp_path / "benthicnet.ckpt"
    torch.save(
        {
            "epoch": 399,
            "pytorch-lightning_version": "1.6.0",
            "state_dict": {f"backbone.{k}": v for k, v in state.items()},
            "hyper_parameters": {"cfg": cfg},
        },
        path,
    )
    raw = load_checkpoint(path)
    assert isinstance(raw, dict)
    assert not isinstance(raw["hyper_parameters"]["cfg"], omegaconf.DictConfig)  # inert
    features = create_extractor("timm:test_resnet", weights=path).extract(PATCHES)
    np.testing.assert_allclose(features, _reference(state, tmp_path), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("zipped", [True, False])
def test_old_lightning_and_training_script_metadata_loads(
    state: dict[str, torch.Tensor], tmp_path: Path, zipped: bool
) -> None:
    """Namespace hparams with paths, numpy scalars and dtypes, OrderedDict, defaultdict."""
    path = tmp_path / "old.ckpt"
    hparams = argparse.Namespace(lr=0.1, arch="resnet50", data_dir=pathlib.PosixPath("/data"))
    torch.save(
        {
            "state_dict": OrderedDict(state),
            "hparams": hparams,
            "best_acc": np.float64(0.8),
            "epoch": np.int64(9),
            "dtype": np.dtype("float32"),
            "counts": defaultdict(int, {"a": 1}),
        },
        path,
        _use_new_zipfile_serialization=zipped,
    )
    raw = load_checkpoint(path)
    assert isinstance(raw, dict)
    assert raw["hparams"].arch == "resnet50"
    assert str(raw["hparams"].data_dir) == "/data"
    assert not isinstance(raw["hparams"].data_dir, pathlib.Path)  # a pure path: no I/O
    assert raw["counts"] == {"a": 1} and type(raw["counts"]) is dict  # factory dropped
    assert set(read_state_dict(path)) == set(state)


def test_lightning_attribute_dict_loads_as_a_dict(
    state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    data = pytest.importorskip("lightning.fabric.utilities.data")
    path = tmp_path / "attr.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": data.AttributeDict(lr=0.1)}, path)
    raw = load_checkpoint(path)
    assert isinstance(raw, dict) and raw["hyper_parameters"] == {"lr": 0.1}


# --- hostile pickles: refused on every load path, code never run --------------------


class _System:
    """os.system on unpickling (pickled as ``posix.system``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


class _Exec:
    """builtins.exec on unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


class _Touch:
    """Path.touch on unpickling: a method of a class whose module is partly allowlisted."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return Path.touch, (self.marker,)


PAYLOADS = [_System, _Exec, _Touch]


def _hostile(
    state: dict[str, torch.Tensor], tmp_path: Path, payload: type, where: str, zipped: bool
) -> tuple[Path, Path]:
    """A quadrat-pretrain-like Lightning checkpoint (loads by path and by name) with the
    payload at ``where``: the top level, inside the state dict, or inside the config."""
    marker = tmp_path / f"ran-{payload.__name__}-{where}-{zipped}"
    evil = payload(marker)
    prefixed = {f"method.backbone.{k}": v for k, v in state.items()}
    config: dict[str, object] = {"backbone": "test_resnet", "method": "byol"}
    checkpoint: dict[str, object] = {"state_dict": prefixed, "hyper_parameters": {"config": config}}
    if where == "top":
        checkpoint["callbacks"] = evil
    elif where == "state_dict":
        prefixed["method.backbone.evil"] = evil  # type: ignore[assignment]
    else:
        config["augment"] = evil
    path = tmp_path / f"{payload.__name__}-{where}-{zipped}.ckpt"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zipped)
    return path, marker


def _load_paths() -> dict[str, Callable[[Path], object]]:
    """Every library function that reads a weights file a user names."""
    from quadrat.ssl.export import export_checkpoint

    return {
        "load_checkpoint": load_checkpoint,
        "read_state_dict": read_state_dict,
        "extractor by name + weights": lambda p: create_extractor("timm:test_resnet", weights=p),
        "extractor by path": lambda p: create_extractor(str(p)),
        "backbone_file.read_config": backbone_file.read_config,
        "backbone_file.pretrain_backbone_state": backbone_file.pretrain_backbone_state,
        "ssl.export_checkpoint": lambda p: export_checkpoint(p, p.with_suffix(".safetensors")),
    }


def test_the_payloads_would_run_if_unpickled(tmp_path: Path) -> None:
    """So that the refusals below mean something."""
    for payload in PAYLOADS:
        marker = tmp_path / payload.__name__
        pickle.loads(pickle.dumps(payload(marker)))
        assert marker.exists()


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("where", ["top", "state_dict", "config"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_hostile_checkpoint_is_refused_on_every_load_path(
    state: dict[str, torch.Tensor], tmp_path: Path, payload: type, where: str, zipped: bool
) -> None:
    path, marker = _hostile(state, tmp_path, payload, where, zipped)
    for name, load in _load_paths().items():
        with pytest.raises(WeightsError) as refused:
            load(path)
        assert not marker.exists(), name
        message = str(refused.value)
        assert str(path) in message and "refused" in message, (name, message)
        assert "Refused checkpoints" in message, name  # the way out is named


def test_the_error_names_every_refused_global(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "a": _System(marker), "b": _Exec(marker)}, path)
    with pytest.raises(WeightsError) as refused:
        read_state_dict(path)
    assert "'posix.system'" in str(refused.value) and "'builtins.exec'" in str(refused.value)
    assert not marker.exists()


def test_an_allowlisted_name_cannot_smuggle_a_call(tmp_path: Path) -> None:
    """A pickle calling an allowlisted name (omegaconf's DictConfig, defaultdict) with a
    payload as its argument: the argument is itself refused."""
    omegaconf = pytest.importorskip("omegaconf")
    marker = tmp_path / "ran"

    class FakeConfig:
        def __reduce__(self) -> tuple:
            return omegaconf.DictConfig, (_System(marker),)

    class FakeDefault:
        def __reduce__(self) -> tuple:
            return defaultdict, (os.system,)

    for i, hostile in enumerate((FakeConfig(), FakeDefault())):
        path = tmp_path / f"smuggle{i}.pt"
        torch.save({"w": torch.zeros(1), "cfg": hostile}, path)
        with pytest.raises(WeightsError, match=re.escape("posix.system")):
            load_checkpoint(path)
        assert not marker.exists()


def test_structured_config_is_refused_naming_its_class(
    state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    """A global outside the allowlist, even a harmless one, is refused: not guessed at."""
    path = tmp_path / "structured.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"cfg": _Hparams()}}, path)
    with pytest.raises(WeightsError, match=re.escape(f"{__name__}._Hparams")):
        read_state_dict(path)


class _Hparams:
    lr = 0.1


def test_not_weights_still_says_so(tmp_path: Path) -> None:
    for content in (b"these are not weights", pickle.dumps({"a": 1}, protocol=4)):
        path = tmp_path / "junk.pt"
        path.write_bytes(content)
        with pytest.raises(WeightsError, match="cannot be read as a torch or safetensors") as e:
            read_state_dict(path)
        assert "weights_only" not in str(e.value)  # torch's advice to unpickle is not passed on


# --- the documented conversion of a trusted, refused file ----------------------------


def _conversion_snippet() -> str:
    text = (ROOT / "docs" / "extractors.md").read_text()
    section = text.split("### Refused checkpoints", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/extractors.md: the Refused checkpoints section has no Python snippet"
    return match.group(1)


def test_the_documented_conversion_makes_a_loadable_file(
    state: dict[str, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save(
        {"state_dict": {f"backbone.{k}": v for k, v in state.items()}, "cfg": _Hparams()},
        tmp_path / "benthicnet.ckpt",
    )
    with pytest.raises(WeightsError, match="refused"):
        read_state_dict(tmp_path / "benthicnet.ckpt")
    exec(compile(_conversion_snippet(), "docs/extractors.md", "exec"), {})  # a trusted file
    converted = tmp_path / "benthicnet.safetensors"
    features = create_extractor("timm:test_resnet", weights=converted).extract(PATCHES)
    np.testing.assert_allclose(features, _reference(state, tmp_path), rtol=1e-5, atol=1e-6)


def test_the_cli_refuses_it_in_one_line(
    state: dict[str, torch.Tensor], survey_template: DemoSurvey, tmp_path: Path
) -> None:
    """``quadrat extract --weights hostile.ckpt``: one line naming the file, no traceback."""
    from typer.testing import CliRunner

    from quadrat import Project
    from quadrat.cli import app

    db = tmp_path / "survey.db"
    with Project.create(db) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
    path, marker = _hostile(state, tmp_path, _System, "top", True)
    result = CliRunner().invoke(
        app, ["extract", "-e", "timm:test_resnet", "--weights", str(path), "-p", str(db)]
    )
    assert result.exit_code != 0 and not marker.exists()
    assert "refused" in result.output and path.name in result.output
    assert "Traceback" not in result.output
