"""Readers that map survey metadata into the BenthicNet columns (see ``schema.py``).

Every reader returns one row per image with the schema's column names, free extra
columns, and provenance (``source_file``, ``source_line``) so that validation can name
the file and line of a bad row. Readers translate *formats* (EXIF rationals, CoralNet's
centimetres, a Squidle+ point export with one row per point) but leave *values* as
found: :func:`quadrat.datasets.schema.validate_metadata` is the one place that decides
what is a bad latitude or date, the same way for every format.

``dataset`` defaults to the name of the folder the input lies in (an image folder's own
name); ``site`` to the format's site field, else the ``site`` argument, else the dataset
name (a survey with no site field is one site).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image, UnidentifiedImageError
from pyarrow import csv as pacsv

from quadrat.datasets.schema import (
    COLUMNS,
    READ_ISSUE,
    SOURCE_FILE,
    SOURCE_LINE,
    parse_datetimes,
)
from quadrat.errors import CsvFormatError, InputError
from quadrat.io.coralnet import read_annotations_csv

#: Header aliases the generic CSV reader recognises (compared case-, space-, dot- and
#: underscore-insensitively), in order of preference.
CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset", "campaign", "survey"),
    "site": ("site", "site name", "station", "deployment"),
    "image": ("image", "image name", "img name", "filename", "file name", "name", "media"),
    "url": ("url", "path best", "image url", "media url"),
    "latitude": ("latitude", "lat", "gps latitude", "pose lat", "decimal latitude"),
    "longitude": ("longitude", "lon", "lng", "long", "gps longitude", "pose lon"),
    "datetime": ("datetime", "date time", "timestamp", "pose timestamp", "time utc"),
    "depth": ("depth", "depth m", "pose dep"),
    "altitude": ("altitude", "alt", "altitude m", "pose alt"),
    "platform": ("platform",),
}

#: Image files read by :func:`read_image_folder`.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

Progress = Callable[[str, int, int], None]

# EXIF tags (Exif 2.32): IFD pointers, date-times, offsets, GPS.
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME, _DATETIME_ORIGINAL = 0x0132, 0x9003
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9010, 0x9011, 0x9291
_MAKE, _MODEL = 0x010F, 0x0110
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6
_EXIF_DATE_RE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}:\d{2}:\d{2})$")


# --------------------------------------------------------------------------- CSV basics


def _key(header: object) -> str:
    return re.sub(r"[\s_.\-]+", " ", str(header).strip().lower())


def read_csv_strings(path: str | Path) -> pd.DataFrame:
    """Every cell as a string ("" when empty), plus ``source_file`` and ``source_line``.

    Drops a leading unnamed pandas index column. Line numbers are exact even when quoted
    cells hold line breaks (a second pass with the csv module, only for such files).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise CsvFormatError("file not found", path=path) from exc
    except IsADirectoryError as exc:
        raise CsvFormatError("is a folder, expected a CSV file", path=path) from exc
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"not a UTF-8 text CSV (undecodable byte at offset {exc.start})", path=path
        ) from exc
    if not text.strip():
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path)
    frame = _parse_arrow(text)
    if frame is None:
        try:
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True
            )
        except pd.errors.ParserError as exc:
            match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            line = int(match.group(2)) if match else None
            raise CsvFormatError(f"not a valid CSV: {exc}", path=path, line=line) from exc
    unnamed = [c for c in frame.columns if c == "" or re.fullmatch(r"Unnamed: \d+", str(c))]
    frame = frame.drop(columns=unnamed)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[SOURCE_FILE] = str(path)
    frame[SOURCE_LINE] = _record_lines(text, len(frame))
    return frame


def _parse_arrow(text: str) -> pd.DataFrame | None:
    """Fast path: pyarrow's multi-threaded CSV reader, every cell a string.

    None (use pandas) when the header repeats a name or pyarrow refuses the file; pandas
    then renames repeats and reports the line of a ragged row.
    """
    header = [h.strip() for h in next(csv.reader(io.StringIO(text)), [])]
    if len(set(header)) != len(header):
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def _record_lines(text: str, n_rows: int) -> np.ndarray:
    """1-based first line of each data record (header = line 1)."""
    simple = np.arange(2, n_rows + 2, dtype=np.int64)
    if '"' not in text and "\n\n" not in text and "\r\n\r\n" not in text:
        return simple
    reader = csv.reader(io.StringIO(text))
    starts: list[int] = []
    previous_end = 0
    for record in reader:
        if record and any(cell.strip() for cell in record):
            starts.append(previous_end + 1)
        previous_end = reader.line_num
    lines = np.asarray(starts[1:], dtype=np.int64)
    return lines if len(lines) == n_rows else simple


def _default_dataset(path: Path) -> str:
    return path.resolve().parent.name or path.stem


def _site_column(site_values: pd.Series | None, site: str | None, dataset: pd.Series) -> pd.Series:
    """The format's site where given, else the caller's ``site``, else the dataset name."""
    fallback = dataset if site is None else pd.Series(site, index=dataset.index, dtype="string")
    if site_values is None:
        return fallback.astype("string")
    text = site_values.astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), fallback).astype("string")


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Schema columns first (those present), then the extras, provenance last."""
    provenance = [c for c in (SOURCE_FILE, SOURCE_LINE) if c in frame.columns]
    schema = [c for c in COLUMNS if c in frame.columns]
    extras = [c for c in frame.columns if c not in schema and c not in provenance]
    return frame[schema + extras + provenance]


# --------------------------------------------------------------------------- generic CSV


def resolve_columns(
    header: Sequence[str], columns: Mapping[str, str | Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """Which file column(s) give each schema column: explicit ``columns`` first, then aliases.

    A value may name several columns (``["date", "time"]`` or ``"date+time"``), joined by
    a space. An explicit name that is not in the header is an error naming both.
    """
    by_key = {_key(h): h for h in reversed(header)}
    chosen: dict[str, list[str]] = {}
    for target, source in (columns or {}).items():
        if target not in COLUMNS:
            raise InputError(
                f"unknown schema column {target!r} in the column mapping; "
                f"expected one of {', '.join(COLUMNS)}",
                value=target,
            )
        names = source.split("+") if isinstance(source, str) else list(source)
        found = []
        for name in names:
            header_name = by_key.get(_key(name))
            if header_name is None:
                raise InputError(
                    f"column {name!r} (mapped to {target}) is not in the file; "
                    f"found {', '.join(header)}",
                    value=name,
                )
            found.append(header_name)
        chosen[target] = found
    used = {name for names in chosen.values() for name in names}
    for target, aliases in CSV_ALIASES.items():
        if target in chosen:
            continue
        for alias in aliases:
            header_name = by_key.get(alias)
            if header_name is not None and header_name not in used:
                chosen[target] = [header_name]
                used.add(header_name)
                break
    if "datetime" not in chosen and "date" in by_key:
        parts = [by_key["date"]] + ([by_key["time"]] if "time" in by_key else [])
        chosen["datetime"] = [p for p in parts if p not in used]
    return chosen


def read_csv_metadata(
    path: str | Path,
    *,
    columns: Mapping[str, str | Sequence[str]] | None = None,
    dataset: str | None = None,
    site: str | None = None,
    platform: str | None = None,
    depth_positive_up: bool = False,
) -> pd.DataFrame:
    """Any per-image CSV (an ROV log, a spreadsheet): map its columns into the schema.

    Columns are found by :data:`CSV_ALIASES` (``lat``, ``img_name``, ``date`` + ``time``
    ...) unless ``columns`` names them (``{"image": "img_name", "datetime": "date+time"}``).
    Unmapped columns are kept as extras. ``depth_positive_up`` negates depth for logs
    that record it as a negative elevation (-6.5 for 6.5 m down).
    """
    path = Path(path)
    raw = read_csv_strings(path)
    header = [c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_LINE)]
    chosen = resolve_columns(header, columns)
    if "image" not in chosen:
        raise CsvFormatError(
            f"no image column found; name it with a column mapping (image=...); "
            f"found {', '.join(header)}",
            path=path,
            line=1,
        )
    out = pd.DataFrame(index=raw.index)
    for target, names in chosen.items():
        joined = raw[names[0]].str.strip()
        for name in names[1:]:
            joined = joined.str.cat(raw[name].str.strip(), sep=" ").str.strip()
        out[target] = joined
    if "dataset" not in out.columns or dataset is not None:
        out["dataset"] = dataset if dataset is not None else _default_dataset(path)
    out["dataset"] = out["dataset"].astype("string")
    out["site"] = _site_column(out.get("site"), site, out["dataset"])
    if platform is not None:
        out["platform"] = platform
    if depth_positive_up and "depth" in out.columns:
        out["depth"] = _negate(out["depth"])
    used = {name for names in chosen.values() for name in names}
    for name in header:
        if name not in used and name not in out.columns:
            out[name] = raw[name]
    out[SOURCE_FILE] = raw[SOURCE_FILE]
    out[SOURCE_LINE] = raw[SOURCE_LINE]
    return _ordered(out)


def _negate(values: pd.Series) -> pd.Series:
    """Negate numbers, leaving unparseable text for validation to report."""
    numbers = pd.to_numeric(values, errors="coerce")
    return (-numbers).astype("object").where(numbers.notna(), values)


# --------------------------------------------------------------------------- CoralNet

#: CoralNet metadata field -> schema column (Height (cm) is converted to metres).
_CORALNET_FIELDS = {
    "Date": "datetime",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Depth": "depth",
    "Height (cm)": "altitude",
}


def read_coralnet_metadata(
    path: str | Path,
    *,
    dataset: str | None = None,
    site: str | None = None,
    site_field: str = "Aux1",
) -> pd.DataFrame:
    """Image metadata from a CoralNet annotation export (or its metadata-only export).

    One row per image (each field's first non-empty value among its points), with
    ``n_points``. CoralNet's
    ``Height (cm)`` (camera above the bottom) becomes ``altitude`` in metres; the site
    comes from ``site_field`` (CoralNet's Aux1 by convention), else a field a source renamed
    to "Site"; other non-empty metadata
    fields are kept as snake_case extras. Annotation files go through
    :func:`quadrat.io.coralnet.read_annotations_csv`; a file without Row/Column is read
    as CoralNet's image-metadata export.
    """
    path = Path(path)
    header = _header(path)
    if {"row", "column"} <= {_key(h) for h in header}:
        points = read_annotations_csv(path)
        fields = list(points.attrs.get("metadata_columns", []))
        per_image = points.groupby("image", sort=False)
        images = per_image.first().reset_index()
        frame = images[["image", *fields]].copy()
        frame["n_points"] = per_image.size().to_numpy()
        frame[SOURCE_LINE] = per_image["line"].min().to_numpy()
    else:
        raw = read_csv_strings(path)
        by_key = {_key(c): c for c in raw.columns}
        if "name" not in by_key:
            raise CsvFormatError(
                f"missing the Name column of a CoralNet export; found {', '.join(header)}",
                path=path,
                line=1,
            )
        frame = raw.rename(columns={by_key["name"]: "image"}).drop(columns=[SOURCE_FILE])
        fields = [c for c in frame.columns if c not in ("image", SOURCE_LINE)]
    frame[SOURCE_FILE] = str(path)
    return _coralnet_to_schema(
        frame, fields, path, dataset=dataset, site=site, site_field=site_field
    )


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), [])
    except FileNotFoundError as exc:
        raise CsvFormatError("file not found", path=path) from exc
    except UnicodeDecodeError as exc:
        raise CsvFormatError("not a UTF-8 text CSV", path=path) from exc


def _coralnet_to_schema(
    frame: pd.DataFrame,
    fields: list[str],
    path: Path,
    *,
    dataset: str | None,
    site: str | None,
    site_field: str,
) -> pd.DataFrame:
    by_key = {_key(f): f for f in fields}
    out = pd.DataFrame({"image": frame["image"].astype("string")}, index=frame.index)
    out["dataset"] = pd.Series(
        dataset if dataset is not None else _default_dataset(path), index=frame.index
    ).astype("string")
    site_name = by_key.get(_key(site_field)) or by_key.get("site")
    out["site"] = _site_column(frame[site_name] if site_name else None, site, out["dataset"])
    used = {site_name}
    for field, target in _CORALNET_FIELDS.items():
        name = by_key.get(_key(field))
        if name is None:
            continue
        used.add(name)
        out[target] = _centimetres_to_metres(frame[name]) if target == "altitude" else frame[name]
    for name in fields:
        if name in used:
            continue
        text = frame[name].astype("string").str.strip()
        if (text.notna() & (text != "")).any():
            out[re.sub(r"\W+", "_", name.strip().lower()).strip("_")] = text
    for name in ("n_points", SOURCE_FILE, SOURCE_LINE):
        if name in frame.columns:
            out[name] = frame[name]
    return _ordered(out)


def _centimetres_to_metres(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return (numbers / 100).astype("object").where(numbers.notna(), values)


# --------------------------------------------------------------------------- Squidle+


def _squidle_fields(columns: Iterable[str]) -> dict[str, str]:
    """Media-level field -> header, for a media list (``key``, ``pose.lat``) or a point
    export (``point.media.key``, ``point.pose.lat``; point-level ``point.id`` is ignored)."""
    fields: dict[str, str] = {}
    for column in columns:
        if column.startswith("point.media."):
            fields[column.removeprefix("point.media.")] = column
        elif column.startswith("point.pose."):
            fields[column.removeprefix("point.")] = column
        elif column.startswith("media."):
            fields.setdefault(column.removeprefix("media."), column)
        elif not column.startswith(("point.", "label.")):
            fields.setdefault(column, column)
    return fields


def read_squidle(
    path: str | Path,
    *,
    dataset: str | None = None,
    site: str | None = None,
    platform: str | None = None,
) -> pd.DataFrame:
    """A Squidle+ dataframe export: its media list, or a point-annotation export.

    Maps ``key`` / ``path_best`` / ``pose.{lat,lon,dep,alt,timestamp}`` and, when the
    export has them, ``deployment.campaign.key`` (dataset) and ``deployment.key`` (site).
    A point export (one row per annotated point) becomes one row per image with
    ``n_points``. The image name is the file name of ``path_best`` (else the media key);
    Squidle+ timestamps are UTC.
    """
    path = Path(path)
    raw = read_csv_strings(path)
    names = _squidle_fields(raw.columns)
    if "key" not in names and "path_best" not in names:
        raise CsvFormatError(
            "not a Squidle+ export: no media key or path_best column; found "
            + ", ".join(c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_LINE)),
            path=path,
            line=1,
        )
    if any(c.startswith("point.") for c in raw.columns):  # one row per point: per image
        media = names.get("id") or names.get("key") or names["path_best"]
        grouped = raw.groupby(media, sort=False)
        first = grouped.head(1).reset_index(drop=True)
        first["n_points"] = grouped.size().to_numpy()
        raw = first

    def column(name: str) -> pd.Series | None:
        return raw[names[name]] if name in names else None

    out = pd.DataFrame(index=raw.index)
    url = column("path_best")
    key = column("key")
    if url is not None:
        out["image"] = url.str.strip().str.rsplit("/", n=1).str[-1]
        if key is not None:
            out["image"] = out["image"].mask(out["image"] == "", key)
        out["url"] = url
    else:
        assert key is not None  # checked above
        out["image"] = key
    campaign = column("deployment.campaign.key")
    if dataset is not None or campaign is None:
        out["dataset"] = dataset if dataset is not None else _default_dataset(path)
    else:
        out["dataset"] = campaign
    out["dataset"] = out["dataset"].astype("string")
    out["site"] = _site_column(column("deployment.key"), site, out["dataset"])
    for source, target in (
        ("pose.lat", "latitude"),
        ("pose.lon", "longitude"),
        ("pose.dep", "depth"),
        ("pose.alt", "altitude"),
    ):
        values = column(source)
        if values is not None:
            out[target] = values
    stamp = column("pose.timestamp")
    if stamp is not None:
        # Squidle+ writes UTC without an offset; say so, so no local timezone applies.
        text = stamp.str.strip()
        out["datetime"] = text.mask(text != "", text + "+00:00")
    if platform is not None:
        out["platform"] = platform
    for name in ("key", "id"):
        values = column(name)
        if values is not None:
            out[f"media_{name}"] = values
    if "n_points" in raw.columns:
        out["n_points"] = raw["n_points"]
    out[SOURCE_FILE] = raw[SOURCE_FILE]
    out[SOURCE_LINE] = raw[SOURCE_LINE]
    return _ordered(out)


# --------------------------------------------------------------------------- image folder


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


def list_images(root: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped)."""
    wanted = {e.lower() for e in extensions}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def read_image_folder(
    root: str | Path,
    *,
    dataset: str | None = None,
    platform: str | None = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
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
    files = list_images(root, extensions)
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
    return _ordered(frame)


# --------------------------------------------------------------------------- GPX tracks


def read_gpx(path: str | Path) -> pd.DataFrame:
    """Time-stamped fixes of a GPX 1.0/1.1 file: track, route and waypoints, sorted by time.

    Columns: ``datetime`` (UTC), ``latitude``, ``longitude``, ``elevation``, ``track``.
    Fixes without a time cannot be matched to photos and are left out. Parsed with the
    standard library's XML parser: GPX is plain XML and needs no extra dependency.
    """
    from xml.etree import ElementTree

    path = Path(path)
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError as exc:
        raise InputError("GPX file not found", path=path) from exc
    except ElementTree.ParseError as exc:
        line, _column = exc.position
        raise InputError(f"not a valid GPX (XML) file: {exc}", path=path, line=line) from exc
    if _local(root.tag) != "gpx":
        raise InputError(f"not a GPX file (root element <{_local(root.tag)}>)", path=path)
    records: list[dict[str, Any]] = []
    for track in (*root.iterfind("{*}trk"), *root.iterfind("{*}rte"), root):
        track_name = track.findtext("{*}name") or path.stem
        tags = ("{*}trkseg/{*}trkpt", "{*}rtept") if track is not root else ("{*}wpt",)
        for tag in tags:
            for fix in track.iterfind(tag):
                records.append(
                    {
                        "time": fix.findtext("{*}time"),
                        "lat": fix.get("lat"),
                        "lon": fix.get("lon"),
                        "ele": fix.findtext("{*}ele"),
                        "track": track_name,
                    }
                )
    frame = pd.DataFrame(records, columns=["time", "lat", "lon", "ele", "track"])
    times, bad_time = parse_datetimes(frame["time"].astype("string"))
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    bad = bad_time | lat.isna().to_numpy() | lon.isna().to_numpy()
    bad |= (lat.abs() > 90).to_numpy() | (lon.abs() > 180).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        record = frame.iloc[first]
        raise InputError(
            f"fix {first + 1} has an invalid position or time "
            f"(lat={record['lat']}, lon={record['lon']}, time={record['time']})",
            path=path,
            value=record.to_dict(),
        )
    out = pd.DataFrame(
        {
            "datetime": times,
            "latitude": lat.astype("float64"),
            "longitude": lon.astype("float64"),
            "elevation": pd.to_numeric(frame["ele"], errors="coerce").astype("float64"),
            "track": frame["track"].astype("string"),
        }
    )
    out = out[out["datetime"].notna()]
    if out.empty:
        raise InputError("GPX file has no time-stamped fixes to match photos to", path=path)
    return out.sort_values("datetime", kind="stable").reset_index(drop=True)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_gpx_tracks(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Several GPX files as one track sorted by time (a fix repeated across files once)."""
    tracks = [read_gpx(path) for path in paths]
    if not tracks:
        raise InputError("no GPX file given")
    merged = pd.concat(tracks, ignore_index=True).sort_values("datetime", kind="stable")
    return merged.drop_duplicates("datetime", keep="first").reset_index(drop=True)


def parse_clock_offset(text: str | float | pd.Timedelta) -> pd.Timedelta:
    """A camera clock offset: seconds (``-10800``, ``+3.5``) or a pandas duration (``-3h``)."""
    if isinstance(text, pd.Timedelta):
        return text
    if isinstance(text, int | float):
        return pd.Timedelta(seconds=float(text))
    value = str(text).strip()
    try:
        return pd.Timedelta(seconds=float(value))
    except ValueError:
        pass
    try:
        offset = pd.Timedelta(value)
    except ValueError as exc:
        raise InputError(
            "clock offset must be seconds (-10800) or a duration (-3h, 00:01:30)", value=text
        ) from exc
    if pd.isna(offset):
        raise InputError("clock offset must not be empty", value=text)
    return offset


def match_gpx(
    table: pd.DataFrame,
    track: pd.DataFrame,
    *,
    clock_offset: str | float | pd.Timedelta = 0,
    max_gap: str | float | pd.Timedelta = 30,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Position each photo on a GPX track by its time, interpolating between fixes.

    The photo's GPS time is its ``datetime`` plus ``clock_offset`` (how far the camera
    clock was *behind* the GPS: a camera on local time UTC-3 with no offset tag needs
    ``+3h``). Latitude and longitude are interpolated linearly in time between the two
    fixes around that moment (``numpy.interp``; fine over the metres between fixes, not
    across the antimeridian). Photos farther than ``max_gap`` from every fix (outside the
    track, or inside a gap in it) keep the position they had. ``datetime`` becomes the
    corrected time; the camera's own time is kept as ``camera_datetime``, and
    ``gpx_gap_s`` says how far (seconds) the nearest fix was.
    """
    if track.empty:
        raise InputError("the GPX track has no fixes to match photos to")
    camera, corrected = _photo_times(table, clock_offset, timezone, "GPX")
    interpolated, gap, matched = _interpolate_in_time(
        _seconds(corrected),
        track["datetime"],
        [track[c].to_numpy(dtype=float) for c in ("latitude", "longitude")],
        parse_clock_offset(max_gap).total_seconds(),
    )
    out = table.copy()
    for column, values in zip(("latitude", "longitude"), interpolated, strict=True):
        current = out[column] if column in out.columns else pd.Series(np.nan, index=out.index)
        out[column] = current.astype("object").where(~matched, values)
    out["camera_datetime"] = camera
    # An unparseable camera time stays as found, for validation to report.
    out["datetime"] = corrected.astype("object").where(corrected.notna(), table["datetime"])
    out["gpx_gap_s"] = gap
    out["gpx_matched"] = matched
    return _ordered(out)


def _photo_times(
    table: pd.DataFrame, clock_offset: str | float | pd.Timedelta, timezone: str, what: str
) -> tuple[pd.Series, pd.Series]:
    """The photos' own (UTC) times and those times plus the clock offset."""
    if "datetime" not in table.columns:
        raise InputError(f"the table has no datetime column to match {what} times to")
    camera, _bad = parse_datetimes(table["datetime"], timezone=timezone)
    return camera, camera + parse_clock_offset(clock_offset)


def _seconds(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as float seconds since 1970 (NaN where missing)."""
    out = np.full(len(stamps), np.nan)
    known = stamps.notna().to_numpy()
    out[known] = stamps[known].to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9
    return out


def _interpolate_in_time(
    at_s: np.ndarray, log_times: pd.Series, values: list[np.ndarray], max_gap_s: float
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Linear interpolation of logged ``values`` at times ``at_s`` (seconds).

    Returns the interpolated values, the distance (seconds) to the nearest log sample, and
    where that distance is within ``max_gap_s`` (a time outside the log or in a gap in it
    gets no value). Sorting is done here, so the log may come in any order.
    """
    log_s = _seconds(log_times)
    order = np.argsort(log_s, kind="stable")
    log_s = log_s[order]
    after = np.clip(np.searchsorted(log_s, at_s), 0, len(log_s) - 1)
    before = np.clip(after - 1, 0, len(log_s) - 1)
    gap = np.minimum(np.abs(log_s[after] - at_s), np.abs(at_s - log_s[before]))
    matched = ~np.isnan(at_s) & (gap <= max_gap_s)
    interpolated = [np.interp(at_s, log_s, v[order]) for v in values]
    return interpolated, np.where(np.isnan(at_s), np.nan, gap), matched


#: Header names :func:`read_depth_log` takes for the time and the depth, in order.
_LOG_TIME_KEYS = ("datetime", "date time", "timestamp", "time")


def read_depth_log(path: str | Path, *, timezone: str = "UTC") -> pd.DataFrame:
    """A time-stamped depth log (a camera's or a dive computer's CSV export).

    Finds the time column (``Time``, ``timestamp``, ``datetime``) and the first column
    whose name starts with "depth"; times without an offset are read in ``timezone``
    (the camera's local clock, like its EXIF times). Columns: ``datetime`` (UTC),
    ``depth`` (metres), sorted by time. A sample with an unparseable time or depth is an
    error naming its line: a log is machine-written, so one bad line means a bad file.
    """
    path = Path(path)
    raw = read_csv_strings(path)
    by_key = {_key(c): c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_LINE)}
    time_column = next((by_key[k] for k in _LOG_TIME_KEYS if k in by_key), None)
    depth_column = next((c for k, c in by_key.items() if k.startswith("depth")), None)
    if time_column is None or depth_column is None:
        raise CsvFormatError(
            "a depth log needs a time column (Time, timestamp, datetime) and a depth column; "
            f"found {', '.join(by_key.values())}",
            path=path,
            line=1,
        )
    times, bad_time = parse_datetimes(raw[time_column], timezone=timezone)
    text = raw[depth_column].str.strip()
    depth = pd.to_numeric(text, errors="coerce")
    bad = bad_time | times.isna().to_numpy() | (depth.isna() & (text != "")).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CsvFormatError(
            f"unreadable sample: {time_column}={raw[time_column].iloc[first]!r}, "
            f"{depth_column}={raw[depth_column].iloc[first]!r}",
            path=path,
            line=int(raw[SOURCE_LINE].iloc[first]),
        )
    log = pd.DataFrame({"datetime": times, "depth": depth.astype("float64")})
    log = log[log["depth"].notna()]
    if log.empty:
        raise CsvFormatError("the depth log has no samples", path=path)
    return log.sort_values("datetime", kind="stable").reset_index(drop=True)


def match_depth(
    table: pd.DataFrame,
    log: pd.DataFrame,
    *,
    clock_offset: str | float | pd.Timedelta = 0,
    max_gap: str | float | pd.Timedelta = 5,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Set each photo's ``depth`` from a depth log by time, interpolating between samples.

    The log's time is the photo's ``datetime`` plus ``clock_offset`` (the log device's
    clock against the camera's). Photos farther than ``max_gap`` from every sample keep
    their depth. Adds ``depth_log_gap_s`` and ``depth_matched``; ``datetime`` is unchanged.
    """
    if log.empty:
        raise InputError("the depth log has no samples to match photos to")
    _camera, shifted = _photo_times(table, clock_offset, timezone, "depth-log")
    (depth,), gap, matched = _interpolate_in_time(
        _seconds(shifted),
        log["datetime"],
        [log["depth"].to_numpy(dtype=float)],
        parse_clock_offset(max_gap).total_seconds(),
    )
    out = table.copy()
    current = out["depth"] if "depth" in out.columns else pd.Series(np.nan, index=out.index)
    out["depth"] = current.astype("object").where(~matched, depth)
    out["depth_log_gap_s"] = gap
    out["depth_matched"] = matched
    return _ordered(out)
