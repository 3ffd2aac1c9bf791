"""The pixels the UI sends: stored pixels without EXIF (points refer to them), within limits."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quadrat.errors import ImageError, LimitError
from quadrat.service.settings import ServiceSettings
from quadrat.service.ui import images as pictures
from quadrat.service.ui.state import UiState
from quadrat.store.browse import ImageFile


def _rotated_jpeg(path: Path, width: int = 64, height: int = 48) -> np.ndarray:
    """A JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (250, 10, 10)  # left half red, right half blue, as stored
    pixels[:, width // 2 :] = (10, 10, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, exif=exif)
    return pixels


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state(tmp_path: Path) -> UiState:
    return UiState(
        store=None, settings=ServiceSettings(database=str(tmp_path / "x.db")), secret="s"
    )


def test_display_jpeg_is_the_stored_frame_without_exif(tmp_path: Path) -> None:
    path = tmp_path / "turned.jpg"
    stored = _rotated_jpeg(path)
    image = ImageFile(1, 1, "turned.jpg", str(path), _sha(path), 64, 48, 6)
    with pytest.warns(UserWarning, match="EXIF orientation"):
        data = pictures.display_jpeg(_state(tmp_path), image)
    shown = Image.open(BytesIO(data))
    assert shown.size == (64, 48)  # not turned: the browser would turn it again
    assert 0x0112 not in shown.getexif()
    pixels = np.asarray(shown.convert("RGB")).astype(int)
    assert np.abs(pixels[:, :24] - stored[:, :24]).mean() < 12  # still red on the left
    assert np.abs(pixels[:, 40:] - stored[:, 40:]).mean() < 12


def test_patch_is_224_pixels_centred_on_the_point(tmp_path: Path) -> None:
    path = tmp_path / "turned.jpg"
    _rotated_jpeg(path)
    image = ImageFile(1, 1, "turned.jpg", str(path), _sha(path), 64, 48, 6)
    with pytest.warns(UserWarning):
        patch = Image.open(BytesIO(pictures.patch_jpeg(_state(tmp_path), image, 24, 10)))
    assert patch.size == (224, 224)
    centre = np.asarray(patch.convert("RGB"))[112, 112].astype(int)
    assert centre[0] > 200 and centre[2] < 60  # column 10 is in the red half


def test_images_over_the_pixel_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.jpg"
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(path)
    monkeypatch.setenv("QUADRAT_MAX_PIXELS_PER_IMAGE", "1000")
    image = ImageFile(2, 1, "big.jpg", str(path), _sha(path), 80, 60, 1)
    with pytest.raises(LimitError):
        pictures.display_jpeg(_state(tmp_path), image)


def test_large_images_are_shrunk_for_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((50, 300, 3), 128, np.uint8)).save(path)
    monkeypatch.setattr(pictures, "DISPLAY_SIDE", 100)
    image = ImageFile(3, 1, "wide.png", str(path), _sha(path), 300, 50, 1)
    shown = Image.open(BytesIO(pictures.display_jpeg(_state(tmp_path), image)))
    assert shown.size == (100, 17)


def test_a_stored_path_is_read_only_when_the_file_has_the_recorded_sha256(
    tmp_path: Path,
) -> None:
    """A project file can name any path; the page shows only the file it recorded."""
    imported = tmp_path / "imported.jpg"
    _rotated_jpeg(imported)
    secret = tmp_path / "private.jpg"
    Image.new("RGB", (64, 48), (1, 2, 3)).save(secret)
    # The project's row says "private.jpg" but records the hash of the imported image.
    hostile = ImageFile(1, 1, "x.jpg", str(secret), _sha(imported), 64, 48, 1)
    with pytest.raises(ImageError, match="SHA-256 differs") as caught:
        pictures.display_jpeg(_state(tmp_path), hostile)
    assert str(secret) in str(caught.value)
    with pytest.raises(ImageError, match="SHA-256 differs"):
        pictures.patch_jpeg(_state(tmp_path), hostile, 10, 10)
