"""Data bugs in the metadata readers (issue 12, item 6): GPX clock warnings, headerless
depth logs. Fixtures are built here; the held-back source that found the bugs is not used.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from quadrat.datasets.readers import match_gpx

# --------------------------------------------------------------------------- GPX


def _track(start: str = "2019-03-11 15:00:00", minutes: int = 10) -> pd.DataFrame:
    """One fix every 10 s for ``minutes`` minutes, moving north."""
    times = pd.date_range(start, periods=minutes * 6 + 1, freq="10s", tz="UTC")
    return pd.DataFrame(
        {
            "datetime": times,
            "latitude": -42.6 + 1e-5 * pd.RangeIndex(len(times)),
            "longitude": -64.26,
            "elevation": 0.0,
            "track": "transect 1",
        }
    )


def _photos(times: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"image": [f"p{i}.jpg" for i in range(len(times))], "datetime": times})


# A camera on local time (UTC-5) with no zone in its EXIF, as the held-back source had:
# 10:01 local is 15:01 UTC, but read as UTC it is five hours before the track.
LOCAL = ["2019-03-11 10:01:00", "2019-03-11 10:04:00", "2019-03-11 10:08:00"]


def test_photos_outside_the_track_warn_with_the_offset_that_fits() -> None:
    with pytest.warns(UserWarning) as caught:
        matched = match_gpx(_photos(LOCAL), _track())
    assert not matched["gpx_matched"].any()
    message = str(caught[0].message)
    assert "3 of 3 photos fall outside the GPX track's time span" in message
    assert "clock offset of +5h" in message  # whole hours: a time zone shift
    assert "timezone option" in message
    assert "--" not in message  # the library never names CLI flags
    assert caught[0].filename == __file__  # points at the caller's line
    # The suggested offset does fit: every photo is matched, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = match_gpx(_photos(LOCAL), _track(), clock_offset="+5h")
    assert fixed["gpx_matched"].all()


def test_an_offset_that_is_not_a_time_zone_is_given_in_seconds() -> None:
    # Centres 14:46:30 and 15:05:00: 18.5 minutes, not a zone.
    early = ["2019-03-11 14:43:00", "2019-03-11 14:46:00", "2019-03-11 14:50:00"]
    with pytest.warns(UserWarning, match=r"clock offset of \+1110 s") as caught:
        match_gpx(_photos(early), _track(), clock_offset=0)
    assert "3 of 3 photos" in str(caught[0].message)


def test_a_few_photos_after_the_track_do_not_get_an_offset() -> None:
    times = ["2019-03-11 14:58:00", *(f"2019-03-11 15:0{i}:00" for i in range(1, 9))]
    times.append("2019-03-11 15:12:00")  # centred on the track, two minutes either side
    with pytest.warns(UserWarning, match="2 of 10 photos") as caught:
        match_gpx(_photos(times), _track())
    assert "taken before or after" in str(caught[0].message)
    assert "clock offset of" not in str(caught[0].message)


def test_photos_within_the_track_do_not_warn() -> None:
    inside = ["2019-03-11 15:00:05", "2019-03-11 15:10:20"]  # the second within max_gap
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matched = match_gpx(_photos(inside), _track())
    assert matched["gpx_matched"].all()
