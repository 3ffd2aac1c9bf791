"""The weights-free texture descriptor: deterministic, order-1 values, sensitive to colour
and texture, independent of batching and threads."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.errors import InputError
from quadrat.extractors import create_extractor
from quadrat.extractors.texture import (
    COLOUR_DIM,
    FEATURE_DIM,
    TEXTURE_DIM,
    TextureExtractor,
    texture_features,
)
from quadrat.extractors.torch_extractor import synthetic_patches

PATCHES = synthetic_patches(24, seed=11).numpy()


def _flat(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (1, 224, 224, 3)).copy()


def test_shape_dtype_and_size() -> None:
    features = create_extractor("texture").extract(PATCHES)
    assert features.shape == (24, FEATURE_DIM) and features.dtype == np.float32
    assert 250 <= FEATURE_DIM <= 350
    assert np.isfinite(features).all()


def test_values_are_of_order_one() -> None:
    features = texture_features(PATCHES)
    assert np.abs(features).max() < 10
    assert np.abs(features.mean(0)).max() < 5


def test_deterministic_and_batching_independent() -> None:
    reference = TextureExtractor(batch_size=24, num_threads=1).extract(PATCHES)
    np.testing.assert_array_equal(
        TextureExtractor(batch_size=5, num_threads=2).extract(PATCHES), reference
    )
    np.testing.assert_array_equal(texture_features(PATCHES[3:4]), reference[3:4])


def test_flat_patches_are_finite() -> None:
    for rgb in [(0, 0, 0), (255, 255, 255), (30, 120, 200)]:
        assert np.isfinite(texture_features(_flat(rgb))).all()


def test_colour_moves_the_colour_features() -> None:
    red, blue = texture_features(_flat((200, 40, 40))), texture_features(_flat((40, 40, 200)))
    assert red[0, 0] > blue[0, 0]  # mean red, context scale
    assert red[0, 2] < blue[0, 2]  # mean blue


def test_texture_moves_the_texture_features() -> None:
    flat = _flat((120, 120, 120))
    rough = flat.astype(np.int16) + np.random.default_rng(0).integers(-40, 40, flat.shape)
    rough = rough.clip(0, 255).astype(np.uint8)
    f_flat, f_rough = texture_features(flat)[0], texture_features(rough)[0]
    texture = slice(COLOUR_DIM, COLOUR_DIM + 30)  # context LBP histograms
    assert np.abs(f_flat[texture] - f_rough[texture]).sum() > 1


def test_centre_and_core_describe_only_the_middle() -> None:
    """A change outside the central 112 px moves the context scale only."""
    patch = PATCHES[:1].copy()
    changed = patch.copy()
    changed[:, :40] = (250, 20, 20)
    a, b = texture_features(patch)[0], texture_features(changed)[0]
    context = COLOUR_DIM + TEXTURE_DIM
    assert np.abs(a[:context] - b[:context]).sum() > 1
    np.testing.assert_array_equal(a[context:], b[context:])


def test_key_names_the_version() -> None:
    assert TextureExtractor().key == "texture@v1"


def test_cpu_only() -> None:
    with pytest.raises(InputError, match="CPU"):
        TextureExtractor(device="cuda")
