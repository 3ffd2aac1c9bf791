"""Tiny test images covering the decoding cases quadrat must handle.

``make_image_fixtures(root)`` writes deterministic (seeded) files and returns their paths:

- ``rgb``: 320x240 RGB JPEG, EXIF orientation 1;
- ``rotated``: 320x240 RGB JPEG with EXIF orientation 6 (a viewer shows it rotated);
- ``flipped``: 320x240 RGB JPEG with EXIF orientation 3;
- ``grey``: L-mode PNG; ``grey16``: 16-bit greyscale PNG (I;16);
- ``palette``: P-mode PNG with a transparent palette entry;
- ``rgba``: RGBA PNG; ``la``: LA PNG;
- ``cmyk``: CMYK JPEG;
- ``truncated``: the ``rgb`` JPEG cut at 60% of its bytes;
- ``not_image``: a text file with a .jpg name.

Also used by the lead's CLI tests: load this file with importlib (see tests/io/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 320, 240
_ORIENTATION = 0x0112


def _noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth-ish random content (so JPEG compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(shape[0] // 8 + 1, shape[1] // 8 + 1, *shape[2:]))
    big = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[: shape[0], : shape[1]]
    return (big + rng.integers(-12, 13, size=big.shape)).clip(0, 255).astype(np.uint8)


def _save_jpeg(array: np.ndarray, path: Path, orientation: int | None = None) -> Path:
    im = Image.fromarray(array)
    exif = Image.Exif()
    if orientation is not None:
        exif[_ORIENTATION] = orientation
    im.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def rgb_array(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """The pixels a fixture RGB image was made from (before JPEG compression)."""
    return _noise(seed, (height, width, 3))


def make_image_fixtures(root: Path) -> dict[str, Path]:
    """Write the test images into ``root`` (created if needed); return name -> path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["rgb"] = _save_jpeg(rgb_array(0), root / "rgb.jpg", orientation=1)
    paths["rotated"] = _save_jpeg(rgb_array(1), root / "rotated.jpg", orientation=6)
    paths["flipped"] = _save_jpeg(rgb_array(2), root / "flipped.jpg", orientation=3)

    grey = _noise(3, (HEIGHT, WIDTH))
    Image.fromarray(grey, mode="L").save(root / "grey.png")
    paths["grey"] = root / "grey.png"

    grey16 = grey.astype(np.uint16) * 257  # full 16-bit range; >> 8 gives back `grey`
    Image.fromarray(grey16).save(root / "grey16.png")
    paths["grey16"] = root / "grey16.png"

    indices = (_noise(4, (HEIGHT, WIDTH)) // 64).astype(np.uint8)  # 4 palette entries
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250] + [0] * (256 * 3 - 12))
    palette.info["transparency"] = 3
    palette.save(root / "palette.png", transparency=3)
    paths["palette"] = root / "palette.png"

    rgba = np.dstack([rgb_array(5), _noise(6, (HEIGHT, WIDTH))])
    Image.fromarray(rgba, mode="RGBA").save(root / "rgba.png")
    paths["rgba"] = root / "rgba.png"

    la = np.dstack([grey, _noise(7, (HEIGHT, WIDTH))])
    Image.fromarray(la, mode="LA").save(root / "la.png")
    paths["la"] = root / "la.png"

    Image.fromarray(_noise(8, (HEIGHT, WIDTH, 4)), mode="CMYK").save(
        root / "cmyk.jpg", "JPEG", quality=92
    )
    paths["cmyk"] = root / "cmyk.jpg"

    data = paths["rgb"].read_bytes()
    (root / "truncated.jpg").write_bytes(data[: int(len(data) * 0.6)])
    paths["truncated"] = root / "truncated.jpg"

    (root / "not_image.jpg").write_text("this is not an image\n")
    paths["not_image"] = root / "not_image.jpg"
    return paths
