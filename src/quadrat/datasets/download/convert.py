"""Check a downloaded image is whole and optionally shrink it: bytes in, stored bytes out."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from quadrat.datasets.download.options import Verify
from quadrat.errors import FetchError

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp"}


@dataclass
class Fetched:
    """A finished image: stored bytes and what the manifest needs about them."""

    data: bytes
    extension: str
    width: int
    height: int
    source_sha256: str
    attempts: int


def has_end_marker(data: bytes, fmt: str) -> bool:
    """Whether a JPEG ends with its end-of-image marker (or a PNG with its IEND chunk): a
    cut-off file does not. Trailing bytes after the marker (some cameras append data) make
    this False, and the caller then falls back to a full decode."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return data.endswith(b"IEND\xaeB`\x82")
    return False


def convert(
    data: bytes, resize: int | None, jpeg_quality: int, verify: Verify = "decode"
) -> tuple[bytes, str, int, int]:
    """Check the image is whole, optionally shrink the shortest side to ``resize`` (never
    enlarge); returns ``(bytes, extension, width, height)``. Unresized images keep their
    original bytes, so their checksum matches the server's file.

    ``verify="decode"`` decodes every pixel (catches any corrupt or truncated file);
    ``"header"`` only parses the header and checks the end marker, several times faster on
    large photos, falling back to a decode when there is no marker to check.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "JPEG"
            shrink = resize is not None and min(im.size) > resize
            if not shrink and verify == "header" and has_end_marker(data, fmt):
                return data, EXTENSIONS.get(fmt, fmt.lower()), im.width, im.height
            if shrink and fmt == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale where that still leaves at least
                # the target size: several times faster, and every byte is still decoded.
                assert resize is not None
                factor = resize / min(im.size)
                im.draft(im.mode, (math.ceil(im.width * factor), math.ceil(im.height * factor)))
            im.load()
            if resize is None or not shrink:
                return data, EXTENSIONS.get(fmt, fmt.lower()), im.width, im.height
            # Re-encoding drops EXIF, so bake the orientation into the pixels first.
            upright = ImageOps.exif_transpose(im)
            scale = resize / min(upright.size)
            size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
            small = upright.resize(size, Image.Resampling.LANCZOS)
    except UnidentifiedImageError as exc:
        raise FetchError("not an image", retryable=False) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # A cut-off JPEG without Content-Length: a second attempt may get all of it.
        raise FetchError(f"undecodable image ({exc})", retryable=True) from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        small.convert("RGB").save(out, "JPEG", quality=jpeg_quality)
    else:
        small.save(out, fmt)
    return out.getvalue(), EXTENSIONS.get(fmt, fmt.lower()), small.width, small.height
