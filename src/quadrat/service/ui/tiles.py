"""Deep Zoom (DZI) tiles of a stored image, for the annotation page's OpenSeadragon viewer.

A large photo or mosaic (8000x6000, 100 megapixels) is not sent whole: the page asks for
the tiles of the part and zoom level on screen. The tiles show the image *upright* (its
EXIF orientation applied here, by numpy views of the stored pixels), so the viewer never
rotates or mirrors anything; the page maps a point's stored (row, column) to upright
coordinates with the same eight orientations (``viewer.js``).

Pixels are read once per image, only after :func:`quadrat.io.images.check_stored` has
verified the file's SHA-256 (through :func:`quadrat.service.ui.images.stored_pixels`,
which also feeds the 224 px patches). From them a pyramid is built once: each level half
the size of the one above (a 2x2 box filter, Pillow's ``reduce``), down to 1x1, as DZI
numbers them (level ``n`` = ``ceil(log2(max(W, H)))`` is the full image). A tile is a crop
of its level, JPEG-encoded on first request.

Caches are in memory and bounded in bytes (:class:`TileLimits`), keyed by the file's
SHA-256 (the pixels, not the row that names them): the pyramids of the images being looked
at, and the encoded tiles (least recently used out first). Not on disk: a tile costs a few
milliseconds from a cached pyramid, the browser keeps tiles itself (their URL holds the
file's hash, so they may be cached for a day), and a project on PostgreSQL has no folder
of its own to put a cache in.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from PIL import Image as PILImage

from quadrat.errors import InputError, LimitError, NotFoundError
from quadrat.service.ui.images import stored_pixels
from quadrat.service.ui.session import UiUser, current_user, ui_state
from quadrat.service.ui.state import UiState
from quadrat.store.browse import ImageFile

_MIB = 1 << 20
DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"
#: Characters of the SHA-256 in a tile URL (a new file gives new URLs: no stale cache).
VERSION_CHARS = 16

#: Environment variable of each :class:`TileLimits` field.
TILE_ENV_VARS: dict[str, str] = {
    "tile_size": "QUADRAT_UI_TILE_SIZE",
    "max_pixels": "QUADRAT_UI_TILE_MAX_PIXELS",
    "pyramid_cache_bytes": "QUADRAT_UI_PYRAMID_CACHE_BYTES",
    "tile_cache_bytes": "QUADRAT_UI_TILE_CACHE_BYTES",
    "jpeg_quality": "QUADRAT_UI_TILE_JPEG_QUALITY",
}


@dataclass(frozen=True)
class TileLimits:
    """How tiles are cut and how much memory their caches may hold.

    Each field can be set from the environment (:data:`TILE_ENV_VARS`) when the server
    starts; the project's own ``pixels_per_image`` limit applies on top of ``max_pixels``.
    """

    #: Side of a tile without its overlap (DZI ``TileSize``): 510 + 2 x 1 = 512 px tiles.
    tile_size: int = 510
    #: Pixels a tile repeats from each neighbour (DZI ``Overlap``; hides seams).
    overlap: int = 1
    #: Largest image (width x height) tiled; a bigger one is refused before it is read.
    max_pixels: int = 100_000_000
    #: Bytes of decoded pyramids kept (the newest is kept even when larger).
    pyramid_cache_bytes: int = 1024 * _MIB
    #: Bytes of encoded JPEG tiles kept.
    tile_cache_bytes: int = 64 * _MIB
    #: JPEG quality of a tile.
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"tile limit {f.name} must be a whole number >= 0, got {value!r}")
        if self.tile_size < 16 or self.tile_size > 4096:
            raise InputError(f"tile limit tile_size must be 16 to 4096, got {self.tile_size}")
        if self.overlap > 8 or not 1 <= self.jpeg_quality <= 95 or self.max_pixels < 1:
            raise InputError("tile limits: overlap 0-8, jpeg_quality 1-95, max_pixels >= 1")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TileLimits:
        """The defaults, each overridden by its environment variable when that is set."""
        env = os.environ if environ is None else environ
        changes: dict[str, int] = {}
        for name, variable in TILE_ENV_VARS.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            try:
                changes[name] = int(float(text.replace("_", "")))
            except ValueError as exc:
                raise InputError(
                    f"environment variable {variable} must be a number, got {text!r}"
                ) from exc
        return replace(cls(), **changes)


class ByteLru:
    """A thread-safe LRU map bounded by the bytes of its values (the newest always stays)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._items[key] = (value, size)
            self.used += size
            while self.used > self.budget and len(self._items) > 1:
                _key, (_value, dropped) = self._items.popitem(last=False)
                self.used -= dropped

    def __len__(self) -> int:
        return len(self._items)


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned as EXIF ``orientation`` says (a view: nothing is copied)."""
    turned = pixels.transpose(1, 0, 2) if orientation >= 5 else pixels
    if orientation in (2, 6):
        return turned[:, ::-1]
    if orientation in (3, 7):
        return turned[::-1, ::-1]
    if orientation in (4, 8):
        return turned[::-1, :]
    return turned


@dataclass(frozen=True)
class Pyramid:
    """Every DZI level of one upright image (index = level; the last is full size)."""

    levels: tuple[np.ndarray, ...]

    @property
    def width(self) -> int:
        return int(self.levels[-1].shape[1])

    @property
    def height(self) -> int:
        return int(self.levels[-1].shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(level.nbytes) for level in self.levels)


def level_count(width: int, height: int) -> int:
    """DZI levels of an image: 1x1 (level 0) up to full size (``ceil(log2(max side))``)."""
    return math.ceil(math.log2(max(width, height, 1))) + 1


def build_pyramid(full: np.ndarray) -> Pyramid:
    """Halve ``full`` (H, W, 3) until 1x1; each level is ceil(size / 2) of the one above."""
    height, width = full.shape[:2]
    levels = [full]
    current = full
    for _ in range(level_count(width, height) - 1):
        current = np.asarray(PILImage.fromarray(np.ascontiguousarray(current)).reduce(2))
        levels.append(current)
    return Pyramid(tuple(reversed(levels)))


def tile_box(
    level_size: tuple[int, int], column: int, row: int, limits: TileLimits
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a tile in its level, with DZI's overlap."""
    width, height = level_size
    size, overlap = limits.tile_size, limits.overlap
    left = column * size - (overlap if column > 0 else 0)
    top = row * size - (overlap if row > 0 else 0)
    right = min(width, (column + 1) * size + overlap)
    bottom = min(height, (row + 1) * size + overlap)
    return left, top, right, bottom


class Tiler:
    """Cuts and caches the tiles of stored images (one per process: see :func:`shared`)."""

    def __init__(self, limits: TileLimits | None = None) -> None:
        self.limits = limits or TileLimits.from_env()
        self.pyramids = ByteLru(self.limits.pyramid_cache_bytes)
        self.tiles = ByteLru(self.limits.tile_cache_bytes)
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _key(self, image: ImageFile) -> tuple[str, int]:
        return (image.sha256, int(image.exif_orientation or 1))

    def pyramid(self, state: UiState, image: ImageFile) -> Pyramid:
        """The image's pyramid, built once (one thread reads the file; the others wait)."""
        key = self._key(image)
        found = self.pyramids.get(key)
        if found is not None:
            return found
        recorded = image.width * image.height
        if recorded > self.limits.max_pixels:
            raise LimitError(
                f"image {image.name!r} has {recorded:,} pixels, over the tile limit max_pixels"
                f" = {self.limits.max_pixels:,}; raise it with {TILE_ENV_VARS['max_pixels']}",
                path=image.path,
                value=recorded,
            )
        with self._locks_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                found = self.pyramids.get(key)
                if found is None:
                    found = self._build(state, image, key[1])
                    self.pyramids.put(key, found, found.nbytes)
        finally:
            with self._locks_lock:
                self._locks.pop(key, None)
        return found

    def _build(self, state: UiState, image: ImageFile, orientation: int) -> Pyramid:
        """Read (after the SHA-256 check), turn upright and halve down to 1x1."""
        pixels = stored_pixels(state, image)
        height, width = pixels.shape[:2]
        if width * height > self.limits.max_pixels:
            raise LimitError(
                f"image {image.name!r} has {width * height:,} pixels, over the tile "
                f"limit max_pixels = {self.limits.max_pixels:,}",
                path=image.path,
                value=width * height,
            )
        return build_pyramid(upright(pixels, orientation))

    def descriptor(self, state: UiState, image: ImageFile, tiles_url: str) -> str:
        """The image's DZI XML; ``tiles_url`` (ends in ``_files/``) is where tiles are."""
        pyramid = self.pyramid(state, image)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="{DZI_NAMESPACE}" Url="{_xml_attribute(tiles_url)}" Format="jpg" '
            f'Overlap="{self.limits.overlap}" TileSize="{self.limits.tile_size}">'
            f'<Size Width="{pyramid.width}" Height="{pyramid.height}"/></Image>\n'
        )

    def tile(self, state: UiState, image: ImageFile, level: int, column: int, row: int) -> bytes:
        """One JPEG tile; NotFoundError for a level or tile the image does not have."""
        key = (*self._key(image), self.limits.tile_size, self.limits.overlap, level, column, row)
        data = self.tiles.get(key)
        if data is not None:
            return bytes(data)
        pyramid = self.pyramid(state, image)
        if not 0 <= level < len(pyramid.levels):
            raise NotFoundError(
                f"image {image.name!r} has DZI levels 0 to {len(pyramid.levels) - 1}, not {level}",
                value=level,
            )
        pixels = pyramid.levels[level]
        height, width = pixels.shape[:2]
        columns = -(-width // self.limits.tile_size)
        rows = -(-height // self.limits.tile_size)
        if not (0 <= column < columns and 0 <= row < rows):
            raise NotFoundError(
                f"level {level} of image {image.name!r} has {columns}x{rows} tiles; "
                f"there is no tile {column}_{row}",
                value=f"{column}_{row}",
            )
        left, top, right, bottom = tile_box((width, height), column, row, self.limits)
        out = io.BytesIO()
        PILImage.fromarray(np.ascontiguousarray(pixels[top:bottom, left:right])).save(
            out, format="JPEG", quality=self.limits.jpeg_quality
        )
        data = out.getvalue()
        self.tiles.put(key, data, len(data))
        return data


def _xml_attribute(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


_SHARED: Tiler | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> Tiler:
    """The process's tiler (limits from the environment at first use).

    One per process, not per server: its caches are keyed by the file's SHA-256, so two
    projects that hold the same photo share its tiles and nothing else.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Tiler()
        return _SHARED


def version(image: ImageFile) -> str:
    """The part of a tile URL that changes when the image's file does."""
    return image.sha256[:VERSION_CHARS]


# ----------------------------------------------------------------------------- endpoints

#: Included by :mod:`.routes` under ``/ui``; same session, roles and errors as its endpoints.
router = APIRouter()
_User = Annotated[UiUser, Depends(current_user)]
_State = Annotated[UiState, Depends(ui_state)]
#: Tile URLs hold the file's hash (:func:`version`): a browser may keep a tile for a day.
TILE_HEADERS = {"Cache-Control": "private, max-age=86400, immutable"}


def _readable(state: UiState, user: UiUser, image_id: int) -> ImageFile:
    """The image, when the user has a role on its source (404 otherwise, as routes does)."""
    from quadrat.service.ui.routes import image_or_404, role_of  # routes includes this module

    image = image_or_404(state, image_id)
    role_of(state, user, image.source_id)
    return image


@router.get("/api/images/{image_id}/tiles.dzi")
def image_tiles(image_id: int, user: _User, state: _State) -> Response:
    """The image's Deep Zoom descriptor (XML): its upright size and where its tiles are.

    Tiles live outside ``/ui/api`` (whose answers are never cached) at
    ``/ui/tiles/{id}/{version}_files/{level}/{column}_{row}.jpg``.
    """
    from quadrat.service.ui.routes import http_errors

    image = _readable(state, user, image_id)
    url = f"/ui/tiles/{image.id}/{version(image)}_files/"
    with http_errors():
        xml = shared().descriptor(state, image, url)
    return Response(xml, media_type="application/xml")


@router.get("/tiles/{image_id}/{tag}_files/{level}/{column}_{row}.jpg")
def image_tile(
    image_id: int, tag: str, level: int, column: int, row: int, user: _User, state: _State
) -> Response:
    """One JPEG tile of the upright image (404 for a file that changed since the page
    asked for the descriptor, or a level or tile the image does not have)."""
    from quadrat.service.ui.routes import http_errors

    image = _readable(state, user, image_id)
    if tag != version(image):
        raise HTTPException(404, detail="The image changed; reload the page.")
    with http_errors():
        data = shared().tile(state, image, level, column, row)
    return Response(data, media_type="image/jpeg", headers=TILE_HEADERS)
