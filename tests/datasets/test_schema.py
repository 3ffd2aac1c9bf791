"""The metadata table: coercion to the schema, every bad-row reason, drop/keep/raise, writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quadrat.datasets.schema import (
    COLUMNS,
    DTYPES,
    ISSUE_COLUMNS,
    parse_datetimes,
    validate_metadata,
    write_metadata,
)
from quadrat.errors import CsvFormatError, InputError


def table(**overrides: list[object]) -> pd.DataFrame:
    """Three good rows as strings (what a reader hands over), with columns replaced."""
    base: dict[str, list[object]] = {
        "dataset": ["d", "d", "d"],
        "site": ["s1", "s1", "s2"],
        "image": ["a.jpg", "b.jpg", "a.jpg"],
        "latitude": ["-42.5", "-42.6", "10"],
        "longitude": ["-64.2", "-64.3", "20"],
        "datetime": ["2019-03-11 15:00:00", "2019-03-11T15:00:30Z", "2019-03-11 12:01:00-03:00"],
        "depth": ["10", "", "12.5"],
        "source_file": ["f.csv"] * 3,
        "source_line": [2, 3, 4],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def reasons(frame: pd.DataFrame) -> dict[int, list[str]]:
    report = validate_metadata(frame, on_error="keep")
    return {int(row): list(group["reason"]) for row, group in report.issues.groupby("row")}


def test_good_rows_get_the_schema_dtypes_and_order() -> None:
    report = validate_metadata(table(extra=["x", "y", "z"]))
    assert report.n_bad == 0 and report.issues.empty
    assert list(report.issues.columns) == list(ISSUE_COLUMNS)
    out = report.table
    assert list(out.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert list(out.columns[len(COLUMNS) :]) == ["source_file", "source_line", "extra"]
    assert {c: str(out[c].dtype) for c in COLUMNS} == {
        c: str(pd.Series(dtype=d).dtype) for c, d in DTYPES.items()
    }
    assert out["latitude"].tolist() == [-42.5, -42.6, 10.0]
    assert out["depth"].isna().tolist() == [False, True, False]
    # Naive read as UTC, "Z" and "-03:00" converted: all the same instant but the second.
    stamps = out["datetime"].tolist()
    assert (
        stamps[0]
        == stamps[2] - pd.Timedelta(seconds=60)
        == pd.Timestamp("2019-03-11 15:00", tz="UTC")
    )
    assert out["url"].isna().all() and out["platform"].isna().all()  # absent -> added, empty


@pytest.mark.parametrize(
    ("overrides", "row", "reason"),
    [
        ({"latitude": ["-42.5", "95", "10"]}, 1, "latitude out of range [-90, 90]"),
        ({"longitude": ["-64.2", "-181", "20"]}, 1, "longitude out of range [-180, 180]"),
        (
            {"latitude": ["0", "-42.6", "10"], "longitude": ["0.0", "-64.3", "20"]},
            0,
            'latitude/longitude 0/0 ("null island": no GPS fix)',
        ),
        ({"latitude": ["-42.5", "", "10"]}, 1, "only one of latitude/longitude is given"),
        ({"latitude": ["-42.5", "-42.6", "north"]}, 2, "latitude is not a number"),
        ({"depth": ["10", "deep", "1"]}, 1, "depth is not a number"),
        ({"altitude": ["1", "-0.5", "2"]}, 1, "altitude is negative (metres above the seafloor)"),
        ({"datetime": ["2019-03-11", "yesterday", ""]}, 1, "datetime is not a date-time"),
        (
            {"datetime": ["2019-03-11", "1901-01-01", ""]},
            1,
            "datetime before 1950 (camera clock unset?)",
        ),
        ({"site": ["s1", "  ", "s2"]}, 1, "site is empty"),
        ({"image": ["a.jpg", None, "a.jpg"]}, 1, "image is empty"),
        ({"image": ["a.jpg", "a.jpg", "a.jpg"]}, 1, "duplicate (dataset, site, image)"),
        ({"read_issue": [None, None, "OSError: truncated"]}, 2, "unreadable image"),
    ],
)
def test_each_check_names_the_row(overrides: dict, row: int, reason: str) -> None:
    found = reasons(table(**overrides))
    assert found == {row: [reason]}


def test_duplicates_point_at_the_first_line_and_other_datasets_are_distinct() -> None:
    frame = table(image=["a.jpg", "a.jpg", "a.jpg"], site=["s1", "s1", "s1"])
    frame.loc[2, "dataset"] = "other"  # same site and image, other dataset: fine
    report = validate_metadata(frame, on_error="keep")
    assert report.bad_rows == [1]
    assert report.issues.loc[0, "value"] == "first at line 2"


def test_one_row_may_fail_several_checks_and_counts_once() -> None:
    frame = table(latitude=["-42.5", "95", "10"], datetime=["", "garbage", ""])
    report = validate_metadata(frame, on_error="keep")
    assert report.bad_rows == [1] and report.n_bad == 1 and len(report.issues) == 2
    assert report.reason_counts().to_dict() == {
        "datetime is not a date-time": 1,
        "latitude out of range [-90, 90]": 1,
    }


def test_keep_clears_untrusted_coordinates_but_keeps_the_row() -> None:
    frame = table(latitude=["0", "95", "x"], longitude=["0", "-64.3", "20"])
    report = validate_metadata(frame, on_error="keep")
    assert len(report.table) == 3 and report.bad_rows == [0, 1, 2]
    assert report.table["latitude"].isna().all() and report.table["longitude"].isna().all()
    assert report.table["depth"].notna().tolist() == [True, False, True]


def test_drop_removes_exactly_the_bad_rows() -> None:
    frame = table(latitude=["-42.5", "95", "10"])
    report = validate_metadata(frame, on_error="drop")
    assert report.dropped and report.n_rows == 3
    assert report.table["image"].tolist() == ["a.jpg", "a.jpg"]
    assert report.table["site"].tolist() == ["s1", "s2"]
    assert report.table.index.tolist() == [0, 1]


def test_raise_names_file_line_and_how_many_more() -> None:
    frame = table(latitude=["-42.5", "95", "91"])
    with pytest.raises(InputError) as info:
        validate_metadata(frame)
    message = str(info.value)
    assert message.startswith("f.csv, line 3: image 'b.jpg': latitude out of range")
    assert "(1 more bad row(s))" in message
    assert info.value.line == 3


def test_raise_without_provenance_names_the_row() -> None:
    frame = table(latitude=["-42.5", "95", "10"]).drop(columns=["source_file", "source_line"])
    with pytest.raises(InputError, match=r"^row 1: image 'b.jpg'"):
        validate_metadata(frame)


def test_missing_required_column_raises_even_when_keeping() -> None:
    with pytest.raises(CsvFormatError, match=r"missing required column.*site"):
        validate_metadata(table().drop(columns=["site"]), on_error="keep")
    with pytest.raises(ValueError, match="on_error"):
        validate_metadata(table(), on_error="ignore")  # type: ignore[arg-type]


def test_empty_table_is_valid() -> None:
    report = validate_metadata(table().iloc[:0])
    assert (
        report.n_rows == 0
        and report.table.empty
        and list(report.table.columns[:10]) == list(COLUMNS)
    )


def test_naive_datetimes_read_in_the_given_timezone_and_day_first() -> None:
    values = pd.Series(["10/6/2022 13:50:40", "2022-10-06T13:50:40+02:00", None])
    pacific, bad = parse_datetimes(values, timezone="America/Los_Angeles")
    assert not bad.any()
    assert pacific[0] == pd.Timestamp("2022-10-06 20:50:40", tz="UTC")  # PDT = UTC-7
    assert pacific[1] == pd.Timestamp("2022-10-06 11:50:40", tz="UTC")  # offset wins
    assert pd.isna(pacific[2])
    day_first, _ = parse_datetimes(pd.Series(["11/03/2019 10:00"]), dayfirst=True)
    assert day_first[0] == pd.Timestamp("2019-03-11 10:00", tz="UTC")


def test_typed_columns_are_accepted_as_they_are() -> None:
    frame = table(
        latitude=[-42.5, np.nan, 10.0],
        longitude=[-64.2, np.nan, 20.0],
        datetime=pd.to_datetime(["2019-03-11", None, "2019-03-12"]),
    )
    report = validate_metadata(frame)
    assert report.table["datetime"].dt.tz is not None and report.n_bad == 0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-200, 200, allow_nan=False), st.floats(-400, 400, allow_nan=False)),
        min_size=1,
        max_size=20,
    )
)
def test_coordinates_are_bad_exactly_when_out_of_range_or_zero(
    points: list[tuple[float, float]],
) -> None:
    lat = np.array([p[0] for p in points])
    lon = np.array([p[1] for p in points])
    frame = pd.DataFrame(
        {
            "dataset": "d",
            "site": "s",
            "image": [f"{i}.jpg" for i in range(len(points))],
            "latitude": lat,
            "longitude": lon,
        }
    )
    report = validate_metadata(frame, on_error="keep")
    expected = (np.abs(lat) > 90) | (np.abs(lon) > 180) | ((lat == 0) & (lon == 0))
    assert report.bad_rows == np.flatnonzero(expected).tolist()
    kept = report.table["latitude"].notna().to_numpy()
    assert (kept == ~expected).all()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_round_trip(tmp_path: Path, suffix: str) -> None:
    out = validate_metadata(table(extra=["x", "y", "z"])).table
    path = write_metadata(out, tmp_path / f"meta{suffix}")
    back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    assert list(back.columns) == list(out.columns) and len(back) == 3
    if suffix == ".parquet":
        assert str(back["datetime"].dtype) == "datetime64[ns, UTC]"
        assert back["latitude"].tolist() == out["latitude"].tolist()
    else:
        assert validate_metadata(back).table["datetime"].equals(out["datetime"])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_write_refuses_unknown_suffix_and_keeps_old_file_on_failure(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown table format '\.xlsx'"):
        write_metadata(table(), tmp_path / "meta.xlsx")
    target = tmp_path / "meta.parquet"
    target.write_bytes(b"previous table")
    broken = table(extra=[1, "two", object()])  # pyarrow cannot store this column
    with pytest.raises(InputError, match="cannot write the table as Parquet"):
        write_metadata(broken, target)
    assert target.read_bytes() == b"previous table"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.parquet"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023/09/24 17:57:34+00", "2023-09-24 17:57:34"),  # Paralenz METADATA.csv
        ("2020:02:02 11:11:27", "2020-02-02 14:11:27"),  # EXIF / dive-log style, naive
        ("2019-03-11 10:00:00-0300", "2019-03-11 13:00:00"),
        ("2019-03-11", "2019-03-11 03:00:00"),  # a date is not an offset
        ("12/31/2019 23:00", "2020-01-01 02:00:00"),
        ("0001-01-01 00:00", None),  # outside the nanosecond range: bad, not a crash
        ("9999-01-01T00:00:00Z", None),
        ("tomorrow", None),
    ],
)
def test_datetime_formats_seen_in_survey_logs(text: str, expected: str | None) -> None:
    parsed, bad = parse_datetimes(pd.Series([text]), timezone="Etc/GMT+3")  # UTC-3
    if expected is None:
        assert bad[0] and pd.isna(parsed[0])
    else:
        assert not bad[0] and parsed[0] == pd.Timestamp(expected, tz="UTC")
