"""Tiny generated inputs for pretraining tests: a labelled folder tree, shards, big photos.

Images are smooth seeded noise with a per-class tint, so they JPEG-compress like photos
and a linear probe has something to learn. Everything is deterministic for a seed.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("algae", "coral", "sand")


def image_array(seed: int, size: tuple[int, int] = (48, 48), tint: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: blocky noise plus fine noise, shifted towards one channel."""
    rng = np.random.default_rng(seed)
    height, width = size
    coarse = rng.integers(0, 200, size=(height // 8 + 1, width // 8 + 1, 3))
    image = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    image = image + rng.integers(0, 40, size=image.shape)
    image[..., tint % 3] += 50
    return image.clip(0, 255).astype(np.uint8)


def jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_folder_tree(root: Path, per_class: int = 8, size: int = 48) -> Path:
    """``root/<class>/<n>.jpg`` for the classes in :data:`CLASSES`."""
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            array = image_array(100 * label + i, (size, size), tint=label)
            (folder / f"{i:03d}.jpg").write_bytes(jpeg_bytes(array))
    return root


def make_shards(
    root: Path, n_samples: int = 24, per_shard: int = 10, size: int = 48, labels: bool = True
) -> list[Path]:
    """WebDataset shards ``train-NNNNNN.tar`` of ``<key>.jpg/.json[/.cls]`` samples."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard, start in enumerate(range(0, n_samples, per_shard)):
        path = root / f"train-{shard:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(start, min(start + per_shard, n_samples)):
                label = i % len(CLASSES)
                parts = {
                    "jpg": jpeg_bytes(image_array(i, (size, size), tint=label)),
                    "json": json.dumps({"key": f"s{i:05d}", "label": CLASSES[label]}).encode(),
                }
                if labels:
                    parts["cls"] = str(label).encode()
                for extension, data in parts.items():
                    info = tarfile.TarInfo(f"s{i:05d}.{extension}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def make_photos(root: Path, n: int = 3, size: tuple[int, int] = (160, 200)) -> list[Path]:
    """A few "large" survey photos (still small: 200x160) to cut random patches from."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = root / f"photo_{i}.jpg"
        path.write_bytes(jpeg_bytes(image_array(1000 + i, size, tint=i)))
        paths.append(path)
    return paths
