"""Reading seafloor photographs: which files are images, header facts, hashes, RGB pixels.

The one home of :data:`IMAGE_SUFFIXES` and :func:`list_images`: ``quadrat import``,
``dataset validate`` and SSL pretraining accept the same files.

Point coordinates in CoralNet (and pyspacer) refer to the pixels *as stored*: EXIF
orientation is ignored. We do the same, so that rows and columns from a CoralNet export
land on the same pixels, and we warn (once per file) when a file carries an orientation
tag, because a viewer will show that image rotated relative to its points.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from quadrat.errors import ImageError, InputError, LimitError, NotFoundError
from quadrat.limits import ENV_VARS, Limits, current

#: File suffixes (lower case) treated as images everywhere in quadrat.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
)

#: Default largest image we decode (pyspacer's limit; ``Limits.pixels_per_image``, which
#: the environment can change); larger files are refused as a decompression bomb or a
#: mosaic that needs tiling first.
MAX_PIXELS = Limits().pixels_per_image

_EXIF_ORIENTATION = 0x0112
_HASH_CHUNK = 1 << 20

# Pillow only exposes "load truncated images" as a module-wide flag; we flip it under a
# lock and only for the (rare) explicit ``allow_truncated`` reload.
_TRUNCATED_LOCK = threading.Lock()
_WARNED_LOCK = threading.Lock()
_warned_orientation: set[str] = set()


def is_image(path: str | Path) -> bool:
    """Whether ``path``'s suffix (any case) is one of :data:`IMAGE_SUFFIXES`."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(
    folder: str | Path,
    *,
    recursive: bool = False,
    suffixes: Iterable[str] = IMAGE_SUFFIXES,
) -> list[Path]:
    """Image files in ``folder`` (and its sub-folders when ``recursive``), sorted.

    Hidden files and anything inside hidden folders (a leading ".", e.g. ``.thumbnails``
    or macOS ``._IMG_1.jpg`` resource forks) are skipped: they are never survey photos.
    A missing folder is a :class:`~quadrat.errors.NotFoundError`.
    """
    root = Path(folder)
    if not root.is_dir():
        if root.exists():
            raise InputError("not a folder", path=root, param="folder")
        raise NotFoundError("folder not found", path=root, param="folder")
    wanted = {s.lower() for s in suffixes}
    candidates = root.rglob("*") if recursive else root.iterdir()
    return sorted(
        p
        for p in candidates
        if p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    )


def read_bytes(path: str | Path, limit: int | None = None) -> bytearray:
    """The file's bytes in a writable buffer (``torch.frombuffer`` needs one, without copy).

    A missing file, a folder or an unreadable file is an :class:`~quadrat.errors.ImageError`
    naming the file; one larger than ``limit`` bytes (default ``Limits.image_file_bytes``)
    a :class:`~quadrat.errors.LimitError`.
    """
    path = Path(path)
    if limit is None:
        limit = current().image_file_bytes
    if not path.is_file():
        reason = "not a regular file" if path.exists() else "image file not found"
        raise ImageError(reason, path=path)
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise LimitError(
                    f"file has {size:,} bytes, more than the limit of {limit:,} (raise it "
                    "with the limit parameter or the environment variable "
                    f"{ENV_VARS['image_file_bytes']})",
                    path=path,
                    value=size,
                    param="limit",
                )
            return bytearray(fh.read())
    except OSError as exc:
        raise ImageError(f"cannot read image file: {exc}", path=path) from exc


@dataclass(frozen=True)
class ImageInfo:
    """What we store about an image file without decoding its pixels."""

    path: Path
    width: int
    height: int
    sha256: str
    exif_orientation: int
    mode: str


def _open(path: Path, limits: Limits | None = None) -> Image.Image:
    """Open lazily (header only), turning every failure into an ImageError naming the file.

    A file over ``limits.image_file_bytes`` or an image over ``limits.pixels_per_image``
    raises LimitError before its pixels are decoded.
    """
    limits = current(limits)
    if not path.exists():
        raise ImageError("image file not found", path=path)
    if not path.is_file():
        raise ImageError("not a regular file", path=path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read image: {exc}", path=path) from exc
    limits.check("image_file_bytes", size, what="image file is too large (bytes)", path=path)
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise LimitError(
            f"image too large to decode safely ({exc}); over the limit pixels_per_image",
            path=path,
            param="limits",
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image Pillow can read", path=path) from exc
    except OSError as exc:
        raise ImageError(f"cannot read image: {exc}", path=path) from exc
    width, height = im.size
    try:
        limits.check(
            "pixels_per_image",
            width * height,
            what=f"image has {width}x{height} pixels (a decompression bomb, or a mosaic to "
            "tile first)",
            path=path,
        )
    except LimitError:
        im.close()
        raise
    return im


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation tag of an open image (1-8; 1 when absent or unreadable)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_image_info(path: str | Path) -> ImageInfo:
    """Size, mode, EXIF orientation and SHA-256 of an image, reading only its header.

    The hash covers the file bytes, so it identifies the exact file a point set was made on
    (a re-saved or resized copy gets a different hash).
    """
    path = Path(path)
    im = _open(path)
    try:
        width, height = im.size
        mode = im.mode
        orientation = exif_orientation(im)
    finally:
        im.close()
    try:
        sha = _sha256(path)
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc}", path=path) from exc
    return ImageInfo(
        path=path,
        width=int(width),
        height=int(height),
        sha256=sha,
        exif_orientation=orientation,
        mode=mode,
    )


def check_stored(path: str | Path, sha256: str) -> Path:
    """``path`` when the file there is the one a project recorded (same SHA-256).

    A project file can name any path on the machine that opens it; its ``sha256`` column
    is what makes a stored path safe to read on someone's behalf (the service, the
    browser UI): a file is only ever read back when its author already had its exact
    content. An image that changed since it was imported is refused the same way.
    """
    path = Path(path)
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ImageError(f"cannot read image file: {exc.strerror or exc}", path=path) from exc
    if actual != sha256:
        raise ImageError(
            "not the image the project recorded (its SHA-256 differs): the file changed "
            "since it was imported, or the project names a file it never imported; "
            "it is not read (import the image again to record the new file)",
            path=path,
        )
    return path


def _is_truncation(exc: OSError) -> bool:
    text = str(exc).lower()
    return "truncated" in text or "incomplete" in text or "premature" in text


def _load_pixels(path: Path, allow_truncated: bool) -> Image.Image:
    """Open and fully decode once; strict about truncation unless allowed."""
    im = _open(path)
    try:
        im.load()
        return im
    except OSError as exc:
        im.close()
        if not _is_truncation(exc):
            raise ImageError(f"cannot decode image: {exc}", path=path) from exc
        if not allow_truncated:
            raise ImageError(
                f"image file is truncated ({exc}); re-copy it, or pass allow_truncated=True "
                "to load it as pyspacer does (missing part filled in)",
                path=path,
            ) from exc
    # Reload the truncated file the way pyspacer does (LOAD_TRUNCATED_IMAGES=True).
    with _TRUNCATED_LOCK:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            im = _open(path)
            im.load()
        except OSError as exc:
            raise ImageError(f"cannot decode truncated image: {exc}", path=path) from exc
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous
    warnings.warn(
        f"{path}: image file is truncated; loaded anyway with the missing part filled in",
        stacklevel=3,
    )
    return im


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to (H, W, 3) uint8 without surprises.

    - 16/32-bit integer greyscale is scaled (>> 8), not clipped to white as ``convert`` does.
    - Palette images with transparency go through RGBA so Pillow applies the palette
      properly; alpha is then dropped (colour values kept, as pyspacer's convert does).
    - CMYK, YCbCr, LAB, L, LA, 1 ... use Pillow's own conversion.
    """
    mode = im.mode
    if mode == "RGB":
        return np.array(im, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(im).astype(np.int64)
        grey = np.clip(grey >> 8, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(im, dtype=np.float64)
        grey = np.clip(np.rint(np.nan_to_num(grey)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA") and ("transparency" in im.info or mode == "PA"):
        im = im.convert("RGBA")
    return np.array(im.convert("RGB"), dtype=np.uint8)


def warn_orientation(path: Path, orientation: int) -> None:
    """Warn once per file that points refer to stored pixels, not the rotated view."""
    key = str(path.resolve())
    with _WARNED_LOCK:
        if key in _warned_orientation:
            return
        _warned_orientation.add(key)
    warnings.warn(
        f"{path}: EXIF orientation is {orientation}; point rows/columns refer to the stored "
        "pixels (as in CoralNet), not to the rotated view an image viewer shows",
        stacklevel=3,
    )


def check_complete(path: str | Path) -> None:
    """Decode the whole file once and discard the pixels; raise ImageError if it is
    truncated, corrupt, unreadable or larger than MAX_PIXELS.

    Import-time check, so a half-copied photo is refused when it is added rather than
    failing (or, in pyspacer, silently half-grey) at feature extraction.
    """
    path = Path(path)
    _load_pixels(path, allow_truncated=False).close()


def load_thumbnail(path: str | Path, side: int) -> np.ndarray:
    """The image upright (EXIF orientation applied), its long side at most ``side`` pixels,
    as (H, W, 3) uint8. A JPEG is decoded at a reduced scale (libjpeg's 1/2 to 1/8 DCT
    scaling, Pillow's ``draft``), so a thumbnail costs a fraction of a full decode; the
    project's limits apply as for :func:`load_rgb`."""
    from PIL import ImageOps

    path = Path(path)
    im = _open(path)
    try:
        im.draft("RGB", (side, side))  # no-op for formats other than JPEG
        im = ImageOps.exif_transpose(im)
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
    except OSError as exc:
        raise ImageError(f"cannot decode image: {exc}", path=path) from exc
    return _to_rgb(im)


def load_rgb(path: str | Path, *, allow_truncated: bool = False) -> np.ndarray:
    """Decode an image once into a (H, W, 3) uint8 array of its stored pixels.

    No EXIF transpose (CoralNet's coordinates refer to stored pixels). A truncated file
    raises ImageError unless ``allow_truncated``, which loads it as pyspacer does.
    """
    path = Path(path)
    im = _load_pixels(path, allow_truncated)
    try:
        orientation = exif_orientation(im)
        rgb = _to_rgb(im)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image mode {im.mode!r} to RGB: {exc}", path=path) from exc
    finally:
        im.close()
    if orientation != 1:
        warn_orientation(path, orientation)
    return rgb
