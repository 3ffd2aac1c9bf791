"""Weights files: published layouts map onto timm/torchvision names exactly; files that
do not fit raise WeightsError naming the file and the offending keys."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import timm
import torch

from quadrat.errors import WeightsError
from quadrat.extractors import create_extractor
from quadrat.extractors.checkpoints import read_state_dict
from quadrat.extractors.layouts import (
    detect_layout,
    from_caffe_vgg16,
    from_pyspacer_efficientnet,
    from_solo_learn,
    to_pyspacer_efficientnet,
)
from quadrat.extractors.networks import IMAGENET_MEAN, IMAGENET_STD, _vgg16_fc7
from quadrat.extractors.torch_extractor import synthetic_patches as _synthetic
from tests.data.pyspacer.data import (
    make_pyspacer_checkpoint,
    make_solo_learn_checkpoint,
    random_efficientnet_b0,
)

PATCHES = _synthetic(6, seed=3).numpy()


def lukemelas_b0_keys() -> set[str]:
    """EfficientNet-B0 parameter names in lukemelas' layout, from the architecture alone:
    16 blocks, the first without expansion convolution; stem, head and a classifier."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"_conv_stem.weight", "_conv_head.weight", "_fc.weight", "_fc.bias"}
    keys |= {f"_bn0.{p}" for p in bn} | {f"_bn1.{p}" for p in bn}
    for n in range(16):
        b = f"_blocks.{n}."
        parts = ["_depthwise_conv.weight", "_project_conv.weight"]
        parts += [f"_se_{s}.{p}" for s in ("reduce", "expand") for p in ("weight", "bias")]
        norms = ["_bn1", "_bn2"] + ([] if n == 0 else ["_bn0"])
        parts += [f"{m}.{p}" for m in norms for p in bn]
        parts += [] if n == 0 else ["_expand_conv.weight"]
        keys |= {b + p for p in parts}
    return keys


def _random_model(name: str, seed: int = 0) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, num_classes=0)
    images = torch.from_numpy(PATCHES).permute(0, 3, 1, 2).float().div(255)
    torch.optim.swa_utils.update_bn([images], model)
    return model.eval()


def _reference(model: torch.nn.Module, mean=None, std=None) -> np.ndarray:
    """The network's own forward pass on PATCHES, preprocessed by hand."""
    x = torch.from_numpy(PATCHES).permute(0, 3, 1, 2).float().div(255)
    if mean is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x).numpy()


@pytest.fixture(scope="module")
def effnet() -> torch.nn.Module:
    return random_efficientnet_b0(PATCHES, seed=1)


def test_lukemelas_names_round_trip(effnet: torch.nn.Module) -> None:
    timm_state = effnet.state_dict()
    lukemelas = to_pyspacer_efficientnet(timm_state)
    assert set(lukemelas) | {"_fc.weight", "_fc.bias"} == lukemelas_b0_keys()
    assert from_pyspacer_efficientnet(lukemelas) == timm_state
    # The block-0 pitfall: it has no expansion, so its norms keep their numbers.
    assert lukemelas["_blocks.0._bn1.weight"] is timm_state["blocks.0.0.bn1.weight"]
    assert lukemelas["_blocks.0._project_conv.weight"] is timm_state["blocks.0.0.conv_pw.weight"]
    assert lukemelas["_blocks.1._bn0.weight"] is timm_state["blocks.1.0.bn1.weight"]
    assert lukemelas["_blocks.1._bn1.weight"] is timm_state["blocks.1.0.bn2.weight"]
    assert lukemelas["_blocks.15._project_conv.weight"] is timm_state["blocks.6.0.conv_pwl.weight"]
    assert lukemelas["_bn1.weight"] is timm_state["bn2.weight"]


def test_pyspacer_layout_gives_the_original_features(
    effnet: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "coralnet.pt"
    torch.save(
        {
            "net": {
                f"module.{k}": v for k, v in to_pyspacer_efficientnet(effnet.state_dict()).items()
            }
        },
        path,
    )
    extractor = create_extractor("efficientnet_b0", path, channels_last=False)
    np.testing.assert_array_equal(extractor.extract(PATCHES), _reference(effnet))
    assert extractor.config.weights_sha256 is not None
    assert extractor.key == f"efficientnet_b0@{extractor.config.weights_sha256[:12]}"


def test_pyspacer_checkpoint_helper_has_its_classifier(tmp_path: Path) -> None:
    path = tmp_path / "coralnet.pt"
    make_pyspacer_checkpoint(path, PATCHES)
    raw = torch.load(path, weights_only=True)["net"]
    assert raw["module._fc.weight"].shape == (1275, 1280)
    assert {k.removeprefix("module.") for k in raw} == lukemelas_b0_keys()
    assert create_extractor("efficientnet_b0", path).extract(PATCHES[:2]).shape == (2, 1280)


def test_plain_and_safetensors_files(effnet: torch.nn.Module, tmp_path: Path) -> None:
    expected = _reference(effnet)
    plain, wrapped, safe = (
        tmp_path / "plain.pth",
        tmp_path / "wrapped.pt",
        tmp_path / "w.safetensors",
    )
    torch.save(effnet.state_dict(), plain)
    torch.save(
        {"model": OrderedDict((f"module.{k}", v) for k, v in effnet.state_dict().items())}, wrapped
    )
    safetensors.torch.save_file({k: v.contiguous() for k, v in effnet.state_dict().items()}, safe)
    for path in (plain, wrapped, safe):
        extractor = create_extractor("efficientnet_b0", path, channels_last=False)
        np.testing.assert_array_equal(extractor.extract(PATCHES), expected)


def test_safetensors_detected_by_content(effnet: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    safetensors.torch.save_file(effnet.state_dict(), path)
    assert set(read_state_dict(path)) == set(effnet.state_dict())


def test_numpy_metadata_loads_with_weights_only(effnet: torch.nn.Module, tmp_path: Path) -> None:
    """Real training checkpoints carry numpy scalars next to the weights."""
    path = tmp_path / "with_meta.pt"
    torch.save(
        {"net": effnet.state_dict(), "best_acc": np.float64(0.8), "epoch": np.int64(9)}, path
    )
    assert set(read_state_dict(path)) == set(effnet.state_dict())


def test_solo_learn_resnet50(tmp_path: Path) -> None:
    model = _random_model("resnet50")
    path = tmp_path / "benthicnet-barlow-twins.ckpt"
    make_solo_learn_checkpoint(path, model)
    extractor = create_extractor("resnet50", path, channels_last=False)
    np.testing.assert_array_equal(
        extractor.extract(PATCHES), _reference(model, IMAGENET_MEAN, IMAGENET_STD)
    )
    assert extractor.feature_dim == 2048


def test_torchvision_resnet50_with_classifier(tmp_path: Path) -> None:
    """A torchvision state dict (same names as timm) with its 1000-way fc still attached."""
    import torchvision

    tv = torchvision.models.resnet50()
    path = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), path)
    extractor = create_extractor("resnet50", path)
    assert extractor.extract(PATCHES[:1]).shape == (1, 2048)


def test_caffe_vgg16_names_cover_the_network() -> None:
    with torch.device("meta"):
        model = _vgg16_fc7()
    expected = set(model.state_dict())
    caffe = [
        f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)
    ]
    caffe += ["fc6", "fc7", "fc8"]
    converted = from_caffe_vgg16(
        {f"{layer}.{p}": torch.empty(0) for layer in caffe for p in ("weight", "bias")}
    )
    assert set(converted) - {"classifier.6.weight", "classifier.6.bias"} == expected


@pytest.mark.parametrize(
    ("keys", "layout"),
    [
        (["_conv_stem.weight", "_blocks.0._bn1.weight"], "pyspacer_efficientnet"),
        (["backbone.conv1.weight", "projector.0.weight"], "solo_learn"),
        (["conv1_1.weight", "fc7.weight"], "caffe_vgg16"),
        (["conv1.weight", "fc.weight"], "timm"),
    ],
)
def test_detect_layout(keys: list[str], layout: str) -> None:
    assert detect_layout(dict.fromkeys(keys, torch.zeros(1))) == layout


def test_solo_learn_drops_everything_but_the_backbone() -> None:
    state = {
        "backbone.conv1.weight": torch.zeros(1),
        "momentum_backbone.conv1.weight": torch.zeros(1),
        "projector.0.weight": torch.zeros(1),
        "classifier.weight": torch.zeros(1),
    }
    assert list(from_solo_learn(state)) == ["conv1.weight"]


# --- files that do not fit ---------------------------------------------------------------


def _save_and_expect(
    state: dict, tmp_path: Path, *patterns: str, name: str = "efficientnet_b0"
) -> None:
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError) as error:
        create_extractor(name, path)
    message = str(error.value)
    assert str(path) in message
    for pattern in patterns:
        assert re.search(pattern, message), message


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        create_extractor("efficientnet_b0", path)


def test_unexpected_keys(effnet: torch.nn.Module, tmp_path: Path) -> None:
    state = {**effnet.state_dict(), "extra_head.weight": torch.zeros(3)}
    _save_and_expect(state, tmp_path, "unexpected keys", "extra_head.weight")


def test_missing_keys(effnet: torch.nn.Module, tmp_path: Path) -> None:
    state = {k: v for k, v in effnet.state_dict().items() if not k.startswith("conv_head.")}
    _save_and_expect(state, tmp_path, "missing keys", "conv_head.weight")


def test_wrong_shapes(effnet: torch.nn.Module, tmp_path: Path) -> None:
    state = {**effnet.state_dict(), "conv_stem.weight": torch.zeros(16, 3, 3, 3)}
    _save_and_expect(state, tmp_path, "wrong shapes", r"conv_stem.weight: file \(16, 3, 3, 3\)")


def test_layout_of_another_network(effnet: torch.nn.Module, tmp_path: Path) -> None:
    state = {"net": to_pyspacer_efficientnet(effnet.state_dict())}
    _save_and_expect(state, tmp_path, "pyspacer_efficientnet checkpoint", name="resnet50")


def test_resnet_weights_into_efficientnet(tmp_path: Path) -> None:
    with torch.device("meta"):
        resnet = timm.create_model("resnet18", num_classes=0)
    state = {k: torch.zeros(v.shape) for k, v in resnet.state_dict().items()}
    _save_and_expect(state, tmp_path, "missing keys", "unexpected keys", r"'conv1\.weight'")


def test_not_a_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights")
    with pytest.raises(WeightsError, match="cannot be read as a torch or safetensors"):
        create_extractor("efficientnet_b0", path)


class _TouchOnLoad:
    """Unpickling this calls Path.touch: the kind of code a weights file must not run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    """weights_only loading: a file that needs arbitrary objects is refused, not run."""
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    torch.save({"net": {"w": torch.zeros(1)}, "hook": _TouchOnLoad(marker)}, path)
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        read_state_dict(path)
    assert not marker.exists()


def test_non_tensor_entries(tmp_path: Path) -> None:
    _save_and_expect({"conv_stem.weight": [1, 2, 3]}, tmp_path, "non-tensor entries")
