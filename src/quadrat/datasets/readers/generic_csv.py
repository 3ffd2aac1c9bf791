"""Any per-image CSV (an ROV log, a spreadsheet): columns found by alias or named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from quadrat.datasets.readers._common import (
    METADATA_READERS,
    default_dataset,
    ordered,
    read_csv_strings,
    site_column,
)
from quadrat.datasets.schema import COLUMNS, SOURCE_FILE, SOURCE_LINE
from quadrat.errors import CsvFormatError, InputError
from quadrat.io.csv import header_key

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


def resolve_columns(
    header: Sequence[str], columns: Mapping[str, str | Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """Which file column(s) give each schema column: explicit ``columns`` first, then aliases.

    A value may name several columns (``["date", "time"]`` or ``"date+time"``), joined by
    a space. An explicit name that is not in the header is an error naming both.
    """
    by_key = {header_key(h): h for h in reversed(header)}
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
            header_name = by_key.get(header_key(name))
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


@METADATA_READERS.register("csv")
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
        out["dataset"] = dataset if dataset is not None else default_dataset(path)
    out["dataset"] = out["dataset"].astype("string")
    out["site"] = site_column(out.get("site"), site, out["dataset"])
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
    return ordered(out)


def _negate(values: pd.Series) -> pd.Series:
    """Negate numbers, leaving unparseable text for validation to report."""
    numbers = pd.to_numeric(values, errors="coerce")
    return (-numbers).astype("object").where(numbers.notna(), values)
