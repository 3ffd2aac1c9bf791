"""BenthicNet's two-view augmentation, split where it is cheapest to run.

1. :class:`TwoCrops` runs per image in the DataLoader's worker processes: two random
   resized crops (scale 0.1-1) of the decoded image, each resized to ``image_size`` and
   kept as uint8. Cropping needs the full-size image, which only the worker has, and
   shrinking to 224 px there means only small uint8 tensors cross to the GPU.
2. :class:`BatchAugment` runs on whole batches wherever the batch lives (the GPU in
   training): colour jitter, greyscale, Gaussian blur, horizontal flip, normalisation,
   each with its own random draw per image (kornia), so no per-image Python loop remains
   on the hot path (specs/measurements.md: the input pipeline, not the GPU, is the limit).
"""

from __future__ import annotations

import kornia.augmentation as kornia_aug
import torch
from torch import nn
from torchvision.transforms import v2

from quadrat.ssl.config import AugmentConfig


class TwoCrops:
    """uint8 CHW image -> two independent random resized crops (uint8, ``image_size``)."""

    def __init__(self, config: AugmentConfig) -> None:
        self.crop = v2.RandomResizedCrop(config.image_size, scale=config.crop_scale, antialias=True)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.crop(image), self.crop(image)


def blur_kernel_size(image_size: int) -> int:
    """An odd kernel about a tenth of the image side (23 px at 224), as SimCLR's recipe."""
    return max(3, (image_size // 10) // 2 * 2 + 1)


class BatchAugment(nn.Module):
    """uint8 (B, 3, S, S) crops -> normalised float views; every image draws its own params."""

    def __init__(self, config: AugmentConfig) -> None:
        super().__init__()
        self.transforms = nn.Sequential(
            kornia_aug.ColorJitter(
                config.brightness,
                config.contrast,
                config.saturation,
                config.hue,
                p=config.jitter_p,
            ),
            kornia_aug.RandomGrayscale(p=config.grayscale_p),
            kornia_aug.RandomGaussianBlur(
                blur_kernel_size(config.image_size), config.blur_sigma, p=config.blur_p
            ),
            kornia_aug.RandomHorizontalFlip(p=config.hflip_p),
        )
        self.normalize = Normalize(config.mean, config.std)

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.float().div_(255.0) if crops.dtype == torch.uint8 else crops.float()
        return self.normalize(self.transforms(x))


class Normalize(nn.Module):
    """Subtract ``mean`` and divide by ``std`` per channel; also used for probe inputs."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std
