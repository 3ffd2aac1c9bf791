"""Pixels for the browser: an image as a JPEG a page can draw, and a point's patch.

Point rows and columns refer to the *stored* pixels (CoralNet's rule), and browsers rotate
a JPEG by its EXIF orientation tag. So the server sends the stored pixels re-encoded
without any EXIF block (the browser shows exactly the frame the points live in) and tells
the page the orientation; the page turns image and markers together to show it upright.
Images are decoded under the project's limits (file bytes, pixels) and shrunk to at most
:data:`DISPLAY_SIDE` pixels on the long side (the page scales the markers to match).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from quadrat.io.images import check_stored, load_rgb, load_thumbnail
from quadrat.patches import PATCH_SIZE, crop_patches
from quadrat.service.ui.state import UiState
from quadrat.store.browse import ImageFile

#: Longest side of the JPEG the page draws (a 100-megapixel mosaic is not sent whole).
DISPLAY_SIDE = 4096
JPEG_QUALITY = 88
#: Longest side of an image browser thumbnail (shown at half that, sharp on a 2x screen).
THUMBNAIL_SIDE = 160


def _encode(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def stored_pixels(state: UiState, image: ImageFile) -> np.ndarray:
    """The image's stored pixels (cached for the few images being annotated).

    Only a file with the SHA-256 the project recorded is read (see
    :func:`quadrat.io.images.check_stored`): the page never shows another file on this
    machine because a project file names its path.
    """
    key = (image.id, image.sha256)
    pixels = state.pixels.get(key)
    if pixels is None:
        pixels = load_rgb(check_stored(image.path, image.sha256), allow_truncated=False)
        state.pixels.put(key, pixels)
    return pixels


def display_jpeg(state: UiState, image: ImageFile) -> bytes:
    """The image as a JPEG without EXIF, its long side at most :data:`DISPLAY_SIDE`."""
    key = (image.id, image.sha256)
    data = state.jpegs.get(key)
    if data is not None:
        return bytes(data)
    pixels = stored_pixels(state, image)
    height, width = pixels.shape[:2]
    scale = min(1.0, DISPLAY_SIDE / max(height, width))
    if scale < 1.0:
        small = PILImage.fromarray(pixels).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))),
            PILImage.Resampling.LANCZOS,
        )
        pixels = np.asarray(small)
    data = _encode(pixels)
    state.jpegs.put(key, data)
    return data


def thumbnail_jpeg(state: UiState, image: ImageFile) -> bytes:
    """The image upright, its long side at most :data:`THUMBNAIL_SIDE`, as a JPEG (only a
    file with the SHA-256 the project recorded is read, as for every image)."""
    key = (image.id, image.sha256)
    data = state.thumbnails.get(key)
    if data is None:
        pixels = load_thumbnail(check_stored(image.path, image.sha256), THUMBNAIL_SIDE)
        data = _encode(pixels, quality=80)
        state.thumbnails.put(key, data)
    return bytes(data)


def patch_jpeg(state: UiState, image: ImageFile, row: int, column: int) -> bytes:
    """The point's 224 px patch (pyspacer's crop, reflected at the borders) as a JPEG."""
    pixels = stored_pixels(state, image)
    patch = crop_patches(pixels, [row], [column], size=PATCH_SIZE)[0]
    return _encode(np.ascontiguousarray(patch), quality=92)
