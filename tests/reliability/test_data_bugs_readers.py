"""Data bugs in the metadata readers (issue 12, item 6): GPX clock warnings, headerless
depth logs. Fixtures are built here; the held-back source that found the bugs is not used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.datasets.readers import match_gpx, read_depth_log, read_depth_logs
from quadrat.errors import CsvFormatError, InputError
from tests.data.metadata.data import DEPTH_LOG, make_metadata_fixtures

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
    # Too much offset: the fit is back to none, said as such.
    with pytest.warns(UserWarning, match=r"clock offset of 0 \(none\)"):
        match_gpx(_photos(["2019-03-11 15:05:00"]), _track(), clock_offset="-2h")


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


# --------------------------------------------------------------------------- depth logs

# A raw Paralenz-style log as the camera writes it with its header switched off.
RAW_LOG = [("2019:03:11 12:00:00", "8.0"), ("2019:03:11 12:00:30", "9.0")]


def _headerless(path: Path, rows: list[tuple[str, ...]] = RAW_LOG) -> Path:
    path.write_text("".join(",".join(row) + "\n" for row in rows))
    return path


def test_a_headerless_depth_log_is_read_with_columns(tmp_path: Path) -> None:
    raw = _headerless(tmp_path / "raw.csv")
    with pytest.raises(CsvFormatError, match="the columns option") as err:
        read_depth_log(raw)  # what happened before: no way to read it
    assert err.value.param == "columns"
    log = read_depth_log(raw, columns=("time", "depth"))
    assert log["depth"].tolist() == [8.0, 9.0]  # the first line is a sample, not a header
    assert log["datetime"].tolist() == [
        pd.Timestamp("2019-03-11 12:00:00", tz="UTC"),
        pd.Timestamp("2019-03-11 12:00:30", tz="UTC"),
    ]
    # Extra columns are named too; several logs share the names.
    wide = _headerless(tmp_path / "wide.csv", [(t, "14.4", d) for t, d in RAW_LOG])
    wide_log = read_depth_log(wide, columns=["Time", "Temperature", "Depth"])
    assert wide_log["depth"].tolist() == [8.0, 9.0]  # the first "depth" column, not temperature
    both = read_depth_logs([raw, raw], columns=("time", "depth"))
    assert both["depth"].tolist() == [8.0, 8.0, 9.0, 9.0]


def test_headerless_log_errors(tmp_path: Path) -> None:
    raw = _headerless(tmp_path / "raw.csv")
    with pytest.raises(CsvFormatError, match="names 3 columns") as err:
        read_depth_log(raw, columns=("time", "temperature", "depth"))
    assert err.value.param == "columns" and err.value.line == 1
    headed = tmp_path / "headed.csv"
    headed.write_text("Time,Depth\n" + raw.read_text())
    with pytest.raises(CsvFormatError, match="has a header row") as err:
        read_depth_log(headed, columns=("time", "depth"))
    assert err.value.param == "columns"
    with pytest.raises(InputError, match="once"):
        read_depth_log(raw, columns=("time", "time"))
    bad = _headerless(tmp_path / "bad.csv", [*RAW_LOG, ("2019:03:11 12:01:00", "deep")])
    with pytest.raises(CsvFormatError, match="unreadable sample") as err:
        read_depth_log(bad, columns=("time", "depth"))
    assert err.value.line == 3  # line numbers count the first line as a sample


def test_cli_depth_log_columns(tmp_path: Path) -> None:
    fixtures = make_metadata_fixtures(tmp_path / "fixtures")
    rows = [(f"2019:03:11 12:00:{s:02d}", f"{d:.1f}") for s, d in DEPTH_LOG]
    raw = _headerless(tmp_path / "LOG01.CSV", rows)
    out = tmp_path / "meta.parquet"
    args = ["dataset", "validate", str(fixtures["images"] / "reef_a"), "--depth-log", str(raw)]
    args += ["--timezone", "Etc/GMT+3", "--out", str(out)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "--depth-log-columns" in refused.output  # the flag, not -c/--column
    result = CliRunner().invoke(app, [*args, "--depth-log-columns", "time,depth"])
    assert result.exit_code == 0, result.output
    assert "depth from log │ 2" in " ".join(result.output.split())
    table = pd.read_parquet(out).set_index("image")
    assert table.loc["a2.jpg", "depth"] == pytest.approx(8.5)
