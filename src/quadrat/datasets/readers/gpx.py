"""GPX tracks: read time-stamped fixes and position photos on them by time."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quadrat.datasets.readers._common import (
    interpolate_in_time,
    ordered,
    parse_clock_offset,
    photo_times,
    seconds,
)
from quadrat.datasets.schema import parse_datetimes
from quadrat.errors import InputError


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

    When photos fall outside the track's time span (by more than ``max_gap``) a
    ``UserWarning`` says how many, and the clock offset that would align the photos' time
    range with the track's (whole hours when it is within 10 minutes of them: a camera on
    local time). Matching still goes ahead: photos outside simply stay unmatched.
    """
    if track.empty:
        raise InputError("the GPX track has no fixes to match photos to")
    camera, corrected = photo_times(table, clock_offset, timezone, "GPX")
    max_gap_s = parse_clock_offset(max_gap).total_seconds()
    interpolated, gap, matched = interpolate_in_time(
        seconds(corrected),
        track["datetime"],
        [track[c].to_numpy(dtype=float) for c in ("latitude", "longitude")],
        max_gap_s,
    )
    _warn_outside_track(
        seconds(corrected), seconds(track["datetime"]), parse_clock_offset(clock_offset), max_gap_s
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
    return ordered(out)


#: A suggested offset this close to whole hours is given in whole hours (a time zone).
_ZONE_TOLERANCE_S = 600.0


def _warn_outside_track(
    photo_s: np.ndarray, track_s: np.ndarray, offset: pd.Timedelta, max_gap_s: float
) -> None:
    """Warn when photos fall outside the track's time span, with the offset that would fit.

    The suggestion centres the photos' time range on the track's: with the default offset
    of 0, a camera on local time lands whole hours away, the commonest cause.
    """
    photo_s = photo_s[~np.isnan(photo_s)]
    track_s = track_s[~np.isnan(track_s)]
    if photo_s.size == 0 or track_s.size == 0:
        return
    start, end = float(track_s.min()), float(track_s.max())
    outside = int(np.count_nonzero((photo_s < start - max_gap_s) | (photo_s > end + max_gap_s)))
    if outside == 0:
        return
    shift = (start + end) / 2 - (float(photo_s.min()) + float(photo_s.max())) / 2
    suggested = offset.total_seconds() + shift
    hours = round(suggested / 3600)
    if hours != 0 and abs(suggested - hours * 3600) <= _ZONE_TOLERANCE_S:
        fit = f"{hours:+d}h"
    elif abs(suggested) < 0.5:
        fit = "0 (none)"
    else:
        fit = f"{suggested:+.0f} s"

    def utc(value: float) -> str:
        return pd.Timestamp(value, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")

    if abs(shift) <= max_gap_s:
        advice = (
            "the photos' time range is already centred on the track, so these were "
            "probably taken before or after it was recorded"
        )
    else:
        advice = (
            f"a clock offset of {fit} would align the photos' time range with the track's "
            "(if the camera clock was on local time without a zone, the timezone option "
            "names that zone instead)"
        )
    warnings.warn(
        f"{outside} of {photo_s.size} photos fall outside the GPX track's time span "
        f"({utc(start)} to {utc(end)}, plus max_gap {max_gap_s:g} s) with clock offset "
        f"{offset.total_seconds():+.0f} s and stay unmatched; {advice}",
        UserWarning,
        stacklevel=3,
    )
