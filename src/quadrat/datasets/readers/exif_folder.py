"""A folder of photos: one row per image from its EXIF header (time, GPS, camera)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, UnidentifiedImageError

from quadrat.datasets.readers._common import METADATA_READERS, Progress, ordered
from quadrat.datasets.schema import READ_ISSUE, SOURCE_FILE
from quadrat.errors import InputError
from quadrat.io.images import IMAGE_SUFFIXES, list_images

# EXIF tags (Exif 2.32): IFD pointers, date-times, offsets, GPS.
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME, _DATETIME_ORIGINAL = 0x0132, 0x9003
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9010, 0x9011, 0x9291
_MAKE, _MODEL = 0x010F, 0x0110
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6
_EXIF_DATE_RE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}:\d{2}:\d{2})$")


def _degrees(value: Any, ref: Any) -> float | str | None:
    """EXIF (degrees, minutes, seconds) and N/S/E/W to signed decimal degrees.

    Unreadable values come back as text, so validation names them.
    """
    if value is None:
        return None
    try:
        d, m, s = (float(v) for v in value)
        degrees = d + m / 60 + s / 3600
    except (TypeError, ValueError, ZeroDivisionError):
        return repr(value)
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    ref = str(ref or "").strip().upper()[:1]
    return -degrees if ref in ("S", "W") else degrees


def _exif_datetime(stamp: Any, subsec: Any, offset: Any) -> str | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` (+ sub-seconds, + offset) as ISO 8601 text.

    A malformed stamp is returned as found, so validation reports it; the all-blank
    placeholder some cameras write means "no date".
    """
    if stamp is None:
        return None
    text = str(stamp).strip().strip("\x00")
    if not text or set(text) <= set(" :"):
        return None
    match = _EXIF_DATE_RE.match(text)
    if match is None:
        return text
    year, month, day, clock = match.groups()
    iso = f"{year}-{month}-{day}T{clock}"
    digits = re.sub(r"\D", "", str(subsec or ""))
    if digits:
        iso += "." + digits
    zone = str(offset or "").strip().strip("\x00")
    if re.fullmatch(r"[+-]\d\d:\d\d", zone):
        iso += zone
    return iso


def read_exif_metadata(path: Path) -> dict[str, Any]:
    """Date-time, GPS position and camera of one image, reading only its header.

    Pillow opens lazily: no pixel is decoded. The GPS altitude is kept as the extra
    ``gps_altitude`` (metres, negative below sea level), not as ``depth``: geotagging
    tools write it from a track's elevation or a depth gauge, and the file does not say
    which (the real georeferenced photos carry values that are not a plausible dive).
    """
    row: dict[str, Any] = {"datetime": None, "latitude": None, "longitude": None}
    with Image.open(path) as im:
        row["width"], row["height"] = im.size
        exif = im.getexif()
        extended = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    stamp = extended.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    offset = extended.get(_OFFSET_TIME_ORIGINAL) or extended.get(_OFFSET_TIME)
    row["datetime"] = _exif_datetime(stamp, extended.get(_SUBSEC_ORIGINAL), offset)
    row["latitude"] = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF))
    row["longitude"] = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF))
    if _GPS_ALT in gps:
        try:
            altitude = float(gps[_GPS_ALT])
        except (TypeError, ValueError, ZeroDivisionError):
            altitude = float("nan")
        below = gps.get(_GPS_ALT_REF) in (1, b"\x01")
        row["gps_altitude"] = -altitude if below else altitude
    make, model = (str(exif.get(tag, "")).strip("\x00 ") for tag in (_MAKE, _MODEL))
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}"
    row["camera"] = camera.strip() or None
    return row


@METADATA_READERS.register("images")
def read_image_folder(
    root: str | Path,
    *,
    dataset: str | None = None,
    platform: str | None = None,
    extensions: Iterable[str] = IMAGE_SUFFIXES,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per image file under ``root``, from EXIF (DateTimeOriginal, GPS).

    ``site`` is the sub-folder the image is in (the folder's own name for images directly
    in it), matching the ``<dataset>/<site>/<image>`` layout. A file Pillow cannot read
    gets a row with ``read_issue`` set, which validation reports.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("not a folder of images", path=root)
    files = list_images(root, recursive=True, suffixes=extensions)
    if not files:
        raise InputError(
            f"no image files ({', '.join(sorted(set(extensions)))}) in the folder", path=root
        )
    name = dataset if dataset is not None else root.resolve().name
    rows: list[dict[str, Any]] = []
    for done, file in enumerate(files, start=1):
        parent = file.parent.relative_to(root).as_posix()
        row: dict[str, Any] = {
            "dataset": name,
            "site": root.resolve().name if parent == "." else parent,
            "image": file.name,
        }
        try:
            row.update(read_exif_metadata(file))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            row[READ_ISSUE] = f"{type(exc).__name__}: {exc}"
        row[SOURCE_FILE] = str(file)
        rows.append(row)
        if progress is not None:
            progress("reading EXIF", done, len(files))
    frame = pd.DataFrame(rows)
    if platform is not None:
        frame["platform"] = platform
    for column in ("dataset", "site", "image"):
        frame[column] = frame[column].astype("string")
    return ordered(frame)
