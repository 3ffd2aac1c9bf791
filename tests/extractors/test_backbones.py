"""CNN extractors: random weights only on request, seeded and usable; preprocessing is as
documented, keys follow the features, tensors in and out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from quadrat.errors import InputError, WeightsError
from quadrat.extractors import ExtractorConfig, TorchExtractor, create_extractor, networks
from quadrat.extractors.torch_extractor import synthetic_patches

PATCHES = synthetic_patches(5, seed=7).numpy()


def _random(name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return create_extractor(name, random_weights=True, **kwargs)


@pytest.fixture(scope="module")
def effnet() -> TorchExtractor:
    return _random("efficientnet_b0")


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "vgg16", "timm:resnet18"])
def test_a_cnn_without_weights_is_refused_and_says_what_to_do(name: str) -> None:
    with pytest.raises(WeightsError) as caught:
        create_extractor(name)
    message = str(caught.value)
    assert caught.value.param == "weights"
    assert "weights file" in message and "quadrat pretrain" in message
    assert "backbone.safetensors" in message and "random_weights" in message
    assert "--" not in message  # the library names parameters, the CLI adds flags


def test_weights_and_random_weights_together_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="not both"):
        create_extractor("efficientnet_b0", tmp_path / "w.pt", random_weights=True)


def test_random_weights_are_not_degenerate(effnet: TorchExtractor) -> None:
    """Default BatchNorm statistics give EfficientNet features of ~1e-13; re-estimated ones
    give features of order 0.1-1 that differ between patches."""
    features = effnet.extract(PATCHES)
    assert features.shape == (5, 1280) and features.dtype == np.float32
    assert 1e-2 < features.std() < 10
    assert features.std(axis=0).mean() > 1e-3


def test_random_weights_are_deterministic(effnet: TorchExtractor) -> None:
    again = _random("efficientnet_b0")
    assert again.key == effnet.key and effnet.key.startswith("efficientnet_b0@random-")
    np.testing.assert_array_equal(again.extract(PATCHES), effnet.extract(PATCHES))
    assert _random("efficientnet_b0", seed=1).key != effnet.key


def test_bf16_changes_the_key(effnet: TorchExtractor) -> None:
    fast = _random("efficientnet_b0", autocast_bf16=True)
    assert fast.key == effnet.key + "+bf16"
    features = fast.extract(PATCHES)
    assert features.dtype == np.float32
    cosine = np.sum(features * effnet.extract(PATCHES), 1) / (
        np.linalg.norm(features, axis=1) * np.linalg.norm(effnet.extract(PATCHES), axis=1)
    )
    assert cosine.min() > 0.95


def test_batch_size_and_memory_format_do_not_change_features(effnet: TorchExtractor) -> None:
    reference = effnet.extract(PATCHES)
    other = _random("efficientnet_b0", batch_size=2, channels_last=False)
    assert other.key == effnet.key
    np.testing.assert_allclose(other.extract(PATCHES), reference, atol=1e-5)


def test_extract_tensor_takes_uint8_nhwc_and_float_nchw(effnet: TorchExtractor) -> None:
    reference = effnet.extract(PATCHES)
    as_uint8 = effnet.extract_tensor(torch.from_numpy(PATCHES))
    as_float = effnet.extract_tensor(torch.from_numpy(PATCHES).permute(0, 3, 1, 2).float() / 255)
    np.testing.assert_array_equal(as_uint8.numpy(), reference)
    np.testing.assert_allclose(as_float.numpy(), reference, atol=1e-5)


def test_empty_input(effnet: TorchExtractor) -> None:
    assert effnet.extract(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 1280)


@pytest.mark.parametrize(
    "patches",
    [
        np.zeros((2, 200, 200, 3), np.uint8),
        np.zeros((2, 224, 224), np.uint8),
        np.zeros((2, 224, 224, 3), np.float32),
    ],
)
def test_bad_patches_are_refused(effnet: TorchExtractor, patches: np.ndarray) -> None:
    with pytest.raises(InputError, match="efficientnet_b0 expects"):
        effnet.extract(patches)


class _Spy(nn.Module):
    """Returns the per-channel mean of its input: shows the preprocessing exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _preprocessed(config: ExtractorConfig, pixel: tuple[int, int, int]) -> np.ndarray:
    extractor = TorchExtractor(_Spy(), config, weights_tag="spy")
    patch = np.broadcast_to(np.array(pixel, np.uint8), (1, 224, 224, 3)).copy()
    return extractor.extract(patch)[0]


def test_preprocessing_pyspacer_scale_only() -> None:
    config = ExtractorConfig(name="spy", feature_dim=3)
    np.testing.assert_allclose(_preprocessed(config, (255, 51, 0)), [1.0, 0.2, 0.0], rtol=1e-6)


def test_preprocessing_imagenet() -> None:
    config = ExtractorConfig(name="spy", feature_dim=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    np.testing.assert_allclose(_preprocessed(config, (255, 0, 51)), [2.0, -1.0, -0.3], rtol=1e-5)


def test_preprocessing_caffe_vgg16(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registered vgg16 (its network swapped for the spy): BGR, 0-255, minus 128."""
    monkeypatch.setattr(networks, "_vgg16_fc7", _Spy)
    extractor = _random("vgg16")
    patch = np.broadcast_to(np.array((200, 100, 10), np.uint8), (1, 224, 224, 3)).copy()
    seen = extractor.extract_tensor(torch.from_numpy(patch))[0].numpy()
    np.testing.assert_array_equal(seen, [-118.0, -28.0, 72.0])


def test_device_is_honoured(effnet: TorchExtractor) -> None:
    assert effnet.device == torch.device("cpu")
    assert next(effnet.model.parameters()).device.type == "cpu"
