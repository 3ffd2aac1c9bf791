from __future__ import annotations

import torch

from quadrat.ssl.augment import BatchAugment, TwoCrops, blur_kernel_size
from quadrat.ssl.config import AugmentConfig


def test_two_crops_are_independent_uint8_views() -> None:
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 120, 90), dtype=torch.uint8)
    view0, view1 = TwoCrops(AugmentConfig(image_size=40))(image)
    assert view0.shape == view1.shape == (3, 40, 40)
    assert view0.dtype == torch.uint8
    assert not torch.equal(view0, view1)


def test_batch_augment_draws_per_image_and_normalises() -> None:
    torch.manual_seed(0)
    config = AugmentConfig(image_size=32)
    same = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).repeat(16, 1, 1, 1)
    out = BatchAugment(config)(same)
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32
    # Identical inputs, different outputs: every image drew its own parameters.
    assert len({tuple(x.flatten()[:50].tolist()) for x in out}) > 8
    # No-op augmentation leaves just the normalisation.
    plain = AugmentConfig(image_size=32, jitter_p=0, grayscale_p=0, blur_p=0, hflip_p=0)
    expected = (same.float() / 255 - torch.tensor(plain.mean).view(1, 3, 1, 1)) / torch.tensor(
        plain.std
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(BatchAugment(plain)(same), expected)


def test_blur_kernel_is_odd_and_a_tenth_of_the_image() -> None:
    assert blur_kernel_size(224) == 23
    assert blur_kernel_size(32) == 3
