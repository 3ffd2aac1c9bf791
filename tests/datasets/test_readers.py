"""Readers into the metadata table: EXIF folders, GPX matching, CoralNet, Squidle+, CSV."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from quadrat.datasets.readers import (
    match_depth,
    match_gpx,
    parse_clock_offset,
    read_coralnet_metadata,
    read_csv_metadata,
    read_depth_log,
    read_gpx,
    read_gpx_tracks,
    read_image_folder,
    read_squidle,
)
from quadrat.datasets.schema import COLUMNS, validate_metadata
from quadrat.errors import CsvFormatError, InputError
from tests.data.metadata.data import (
    DEPTH_LOG,
    REEF_A,
    ROV_BAD_LINES,
    ROV_ROWS,
    SQUIDLE_IMAGES,
    TRACK,
    make_metadata_fixtures,
)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_metadata_fixtures(tmp_path_factory.mktemp("metadata"))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --------------------------------------------------------------------------- image folder


def test_image_folder_reads_exif_time_and_gps(fixtures: dict[str, Path]) -> None:
    frame = read_image_folder(fixtures["images"])
    assert frame["image"].tolist() == [
        "a1.jpg",
        "a2.jpg",
        "a3.jpg",
        "b1.jpg",
        "b2.jpg",
        "broken.jpg",
    ]
    assert set(frame["dataset"]) == {"survey"}
    assert frame["site"].tolist() == ["reef_a"] * 3 + ["reef_b"] * 3
    report = validate_metadata(frame, on_error="keep")
    table = report.table.set_index("image")
    for name, (_stamp, lat, lon) in REEF_A.items():
        if lat != 0:
            assert table.loc[name, "latitude"] == pytest.approx(lat, abs=1e-9)
            assert table.loc[name, "longitude"] == pytest.approx(lon, abs=1e-9)
    # 12:00:00 at -03:00 (OffsetTimeOriginal) is 15:00 UTC.
    assert table.loc["a1.jpg", "datetime"] == utc("2019-03-11 15:00:00")
    assert table.loc["a1.jpg", "gps_altitude"] == -8.5  # below sea level
    assert table.loc["a1.jpg", "camera"] == "QuadratCam QC-1"
    assert np.isnan(table.loc["b1.jpg", "latitude"])  # no GPS is not an error
    by_image = report.issues.groupby("image")["reason"].apply(list).to_dict()
    assert by_image == {
        "a3.jpg": ['latitude/longitude 0/0 ("null island": no GPS fix)'],
        "b2.jpg": ["datetime is not a date-time"],
        "broken.jpg": ["unreadable image"],
    }
    assert "notes.txt" not in set(frame["image"])


def test_image_folder_never_decodes_pixels(
    fixtures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Image.Image) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", refuse)
    frame = read_image_folder(fixtures["images"] / "reef_a")
    assert len(frame) == 3 and frame["latitude"].notna().all()
    assert set(frame["site"]) == {"reef_a"}  # images directly in the folder: its name


def test_image_folder_reports_progress_and_refuses_bad_folders(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    calls: list[tuple[str, int, int]] = []
    read_image_folder(fixtures["images"], progress=lambda *args: calls.append(args))
    assert calls[-1] == ("reading EXIF", 6, 6) and len(calls) == 6
    with pytest.raises(InputError, match="no image files"):
        read_image_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        read_image_folder(tmp_path / "missing")


# --------------------------------------------------------------------------- GPX


def test_read_gpx_keeps_timed_fixes_sorted(fixtures: dict[str, Path]) -> None:
    track = read_gpx(fixtures["gpx"])
    assert len(track) == len(TRACK)  # the waypoint without a time is left out
    assert track["datetime"].tolist() == [utc(t) for t, _, _ in TRACK]
    assert track["latitude"].tolist() == [lat for _, lat, _ in TRACK]
    assert set(track["track"]) == {"transect 1"} and (track["elevation"] == 0.5).all()
    merged = read_gpx_tracks([fixtures["gpx"], fixtures["gpx"]])
    assert len(merged) == len(TRACK)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<gpx><trk><trkseg><trkpt lat='1' lon='2'>", "not a valid GPX"),
        ("<kml/>", "not a GPX file"),
        ("<gpx><wpt lat='95' lon='2'><time>2019-01-01T00:00:00Z</time></wpt></gpx>", "fix 1"),
        ("<gpx><wpt lat='1' lon='2'/></gpx>", "no time-stamped fixes"),
    ],
)
def test_read_gpx_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.gpx"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_gpx(path)
    assert str(path) in str(info.value)


def test_match_gpx_interpolates_between_fixes(fixtures: dict[str, Path]) -> None:
    photos = read_image_folder(fixtures["images"])
    matched = match_gpx(photos, read_gpx(fixtures["gpx"]))
    table = validate_metadata(matched, on_error="keep").table.set_index("image")
    # a1 at 15:00:00 lies halfway between the fixes at 14:59:50 and 15:00:10.
    assert table.loc["a1.jpg", "latitude"] == pytest.approx(-42.6240, abs=1e-9)
    assert table.loc["a1.jpg", "longitude"] == pytest.approx(-64.2600, abs=1e-9)
    assert table.loc["a2.jpg", "latitude"] == pytest.approx(-42.6242, abs=1e-9)
    # a3's GPS had no fix (0/0); the track positions it, so it is no longer bad.
    assert table.loc["a3.jpg", "latitude"] == pytest.approx(-42.6244, abs=1e-9)
    assert table.loc["a3.jpg", "gpx_gap_s"] == 10
    assert table["gpx_matched"].tolist() == [True, True, True, False, False, False]
    assert np.isnan(table.loc["b1.jpg", "latitude"])  # an hour after the track: untouched
    assert table.loc["b2.jpg", "latitude"] == pytest.approx(-42.7)  # keeps its own GPS


def test_match_gpx_applies_the_camera_clock_offset(fixtures: dict[str, Path]) -> None:
    photos = read_image_folder(fixtures["images"] / "reef_a")
    matched = match_gpx(photos, read_gpx(fixtures["gpx"]), clock_offset="+60")
    assert matched["gpx_matched"].tolist() == [True, True, False]  # a3 now after the track
    table = validate_metadata(matched, on_error="keep").table.set_index("image")
    assert table.loc["a1.jpg", "latitude"] == pytest.approx(-42.6244, abs=1e-9)
    assert table.loc["a1.jpg", "datetime"] == utc("2019-03-11 15:01:00")
    assert table.loc["a1.jpg", "camera_datetime"] == utc("2019-03-11 15:00:00")
    far = match_gpx(photos, read_gpx(fixtures["gpx"]), clock_offset="-1h")
    assert not far["gpx_matched"].any()
    # Naive camera times (no offset tag) plus the zone difference give the same match.
    naive = photos.assign(datetime=photos["datetime"].str.replace("-03:00", "", regex=False))
    shifted = match_gpx(naive, read_gpx(fixtures["gpx"]), clock_offset="3h")
    assert shifted["latitude"].astype(float).tolist() == pytest.approx(
        match_gpx(photos, read_gpx(fixtures["gpx"]))["latitude"].astype(float).tolist()
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("-10800", -10800), ("+3.5", 3.5), ("-3h", -10800), ("00:01:30", 90), (12, 12)],
)
def test_parse_clock_offset(text: str | int, seconds: float) -> None:
    assert parse_clock_offset(text).total_seconds() == seconds


def test_parse_clock_offset_refuses_nonsense() -> None:
    with pytest.raises(InputError, match="clock offset"):
        parse_clock_offset("three hours")


# --------------------------------------------------------------------------- CoralNet


def test_coralnet_annotation_export_gives_one_row_per_image(fixtures: dict[str, Path]) -> None:
    frame = read_coralnet_metadata(fixtures["coralnet"], site="lagoon")
    assert frame["image"].tolist() == ["IMG_1.JPG", "IMG_2.JPG", "IMG_3.JPG"]
    assert frame["n_points"].tolist() == [2, 2, 2]
    assert frame["source_line"].tolist() == [2, 4, 6]
    assert frame["site"].tolist() == ["north", "north", "lagoon"]  # Aux1, else --site
    assert frame["camera"].tolist() == ["GoPro"] * 3
    report = validate_metadata(frame, on_error="keep")
    assert report.table["altitude"].tolist()[:2] == [0.5, 0.5]  # 50 cm
    assert report.table["depth"].tolist()[:2] == [4.0, 4.0]
    assert report.table["datetime"][0] == utc("2020-01-05")
    assert report.issues[["source_line", "reason"]].values.tolist() == [
        [4, "latitude out of range [-90, 90]"]
    ]


def test_coralnet_metadata_export_matches_the_annotation_export(
    fixtures: dict[str, Path],
) -> None:
    points = validate_metadata(read_coralnet_metadata(fixtures["coralnet"]), on_error="keep")
    images = validate_metadata(
        read_coralnet_metadata(fixtures["coralnet_metadata"]), on_error="keep"
    )
    columns = list(COLUMNS)
    pd.testing.assert_frame_equal(points.table[columns], images.table[columns])
    assert images.table["dataset"][0] == fixtures["coralnet"].parent.name
    assert images.table["site"][2] == images.table["dataset"][2]  # no Aux1: one site


# --------------------------------------------------------------------------- Squidle+


def test_squidle_point_export_gives_one_row_per_image(fixtures: dict[str, Path]) -> None:
    frame = read_squidle(fixtures["squidle_points"], platform="AUV")
    report = validate_metadata(frame)
    table = report.table
    assert table["image"].tolist() == list(SQUIDLE_IMAGES)
    assert table["n_points"].tolist() == [2, 2, 2]
    assert set(table["dataset"]) == {"Tasmania201006"}
    assert table["site"].tolist() == ["r20100604_lanterns"] * 2 + ["r20100605_lanterns"]
    assert table["url"][0] == "https://example.org/auv/PR_0001.jpg"
    assert table["depth"].tolist() == [21.5, 22.5, 23.5]
    assert table["datetime"][0] == utc("2010-06-04 23:10:41")
    assert set(table["platform"]) == {"AUV"}
    assert table["source_line"].tolist() == [2, 4, 6]


def test_squidle_media_list_utc_even_with_a_local_timezone(fixtures: dict[str, Path]) -> None:
    frame = read_squidle(fixtures["squidle_media"], dataset="tas")
    table = validate_metadata(frame, timezone="Australia/Hobart").table
    assert table["datetime"][0] == utc("2010-06-04 23:10:41")  # Squidle+ times are UTC
    assert table["dataset"].tolist() == ["tas", "tas"] and table["site"].tolist() == ["tas"] * 2
    assert table["media_key"].tolist() == ["PR_0001", "PR_0002"]


def test_squidle_refuses_other_csvs(fixtures: dict[str, Path]) -> None:
    with pytest.raises(CsvFormatError, match="not a Squidle"):
        read_squidle(fixtures["rov"])


# --------------------------------------------------------------------------- generic CSV


def test_csv_with_aliases_date_plus_time_and_negative_depth(fixtures: dict[str, Path]) -> None:
    frame = read_csv_metadata(fixtures["rov"], depth_positive_up=True, platform="ROV")
    assert len(frame) == ROV_ROWS
    report = validate_metadata(frame, on_error="keep", timezone="America/Los_Angeles")
    table = report.table
    assert table["datetime"][0] == utc("2022-10-06 20:50:40")
    assert table["depth"][0] == 6.5 and table["site"].tolist()[:2] == ["1", "1"]
    assert "heading" in table.columns and table["platform"][0] == "ROV"
    lines = report.issues.groupby("source_line")["reason"].first().to_dict()
    assert sorted(lines) == sorted(ROV_BAD_LINES)
    assert lines[4].startswith("latitude/longitude 0/0")
    assert lines[6] == "duplicate (dataset, site, image)"
    assert lines[7] == "datetime is not a date-time"


def test_csv_explicit_mapping_and_errors(fixtures: dict[str, Path]) -> None:
    frame = read_csv_metadata(
        fixtures["rov"], columns={"image": "img_name", "site": "heading"}, dataset="puget"
    )
    assert frame["site"][0] == "263" and set(frame["dataset"]) == {"puget"}
    with pytest.raises(InputError, match="'photo' \\(mapped to image\\) is not in the file"):
        read_csv_metadata(fixtures["rov"], columns={"image": "photo"})
    with pytest.raises(InputError, match="unknown schema column 'colour'"):
        read_csv_metadata(fixtures["rov"], columns={"colour": "lat"})


def test_csv_line_numbers_survive_quoted_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('image,comment,lat,lon\na.jpg,"two\nlines",1,2\n\nb.jpg,ok,95,2\n')
    report = validate_metadata(read_csv_metadata(path, site="s"), on_error="keep")
    assert report.table["source_line"].tolist() == [2, 5]
    assert report.issues["source_line"].tolist() == [5]


def test_csv_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="file not found"):
        read_csv_metadata(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CsvFormatError, match="empty file"):
        read_csv_metadata(empty)
    images_missing = tmp_path / "no_image.csv"
    images_missing.write_text("lat,lon\n1,2\n")
    with pytest.raises(CsvFormatError, match="no image column") as info:
        read_csv_metadata(images_missing)
    assert str(images_missing) in str(info.value)


# --------------------------------------------------------------------------- real data

SQUIDLE = "squidle-tasmania-kelp"
GEOREF = "georef-photoquadrats"


@pytest.mark.shared_data
def test_real_squidle_export(shared_data: Path) -> None:
    (export,) = glob.glob(str(shared_data / SQUIDLE / "annotations-*.csv"))
    report = validate_metadata(read_squidle(export))
    assert report.n_rows == 300 and report.n_bad == 0
    assert report.table["n_points"].sum() == 1500
    assert report.table["depth"].between(21, 28.5).all()  # the export: 21-28 m
    media = validate_metadata(read_squidle(shared_data / SQUIDLE / "test_media.csv"))
    assert media.n_rows == 300 and media.table["latitude"].notna().all()


@pytest.mark.shared_data
def test_real_rov_log_null_island_and_duplicates(shared_data: Path) -> None:
    frame = read_csv_metadata(
        shared_data / "seattle-rov-patches" / "rov_images_2022.csv", depth_positive_up=True
    )
    report = validate_metadata(frame, on_error="drop", timezone="America/Los_Angeles")
    assert report.n_rows == 1479
    assert report.reason_counts().to_dict() == {
        'latitude/longitude 0/0 ("null island": no GPS fix)': 140,
        "duplicate (dataset, site, image)": 4,
    }
    assert len(report.table) == 1479 - 144 and (report.table["depth"] > 0).all()
    assert report.table["site"].nunique() == 8


@pytest.mark.shared_data
def test_real_coralnet_export(shared_data: Path) -> None:
    report = validate_metadata(
        read_coralnet_metadata(shared_data / "moorea-lter-2008" / "annotations.csv")
    )
    assert report.n_rows == 21 and (report.table["n_points"] == 200).all()
    assert report.table["latitude"].isna().all()  # the export's metadata is empty


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_photos_gpx_positions_agree_with_their_exif_gps(shared_data: Path) -> None:
    """The georeferenced photos were tagged from these tracks: matching by time (UTC from
    the EXIF offset, no clock offset) must land on their EXIF GPS to within centimetres."""
    example = shared_data / GEOREF / "MAP_example"
    photos = read_image_folder(example / "photoquadrats_georeferenced")
    exif = validate_metadata(photos).table
    assert len(exif) == 560 and exif["latitude"].notna().all()
    track = read_gpx_tracks(sorted((example / "gpx_transects").glob("*.gpx")))
    matched = validate_metadata(match_gpx(photos, track)).table
    ok = matched["gpx_matched"].to_numpy()
    assert ok.sum() >= 500
    metres_per_degree = 111_195.0
    dlat = (matched["latitude"] - exif["latitude"])[ok] * metres_per_degree
    dlon = (
        (matched["longitude"] - exif["longitude"])[ok]
        * metres_per_degree
        * np.cos(np.radians(exif["latitude"][ok]))
    )
    distance = np.hypot(dlat, dlon)
    assert np.median(distance) < 0.5 and np.quantile(distance, 0.9) < 2


@pytest.mark.shared_data
def test_real_full_size_photos(shared_data: Path) -> None:
    report = validate_metadata(read_image_folder(shared_data / GEOREF / "PhotoswithGPS"))
    assert report.n_rows == 8
    assert report.table["latitude"].between(-34.67, -34.66).all()
    assert report.table["datetime"].min() == utc("2023-09-24 17:52:43.14")


def test_csv_repeated_headers_and_ragged_rows(tmp_path: Path) -> None:
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("image,lat,lon,lat\na.jpg,1,2,3\n")
    frame = read_csv_metadata(repeated, site="s")
    assert frame["latitude"].tolist() == ["1"] and frame["lat.1"].tolist() == ["3"]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("image,lat,lon\na.jpg,1,2\nb.jpg,1,2,3,4\n")
    with pytest.raises(CsvFormatError, match="row has 5 fields but the header has 3") as info:
        read_csv_metadata(ragged)
    assert info.value.line == 3


def test_match_gpx_needs_a_track_and_a_datetime(fixtures: dict[str, Path]) -> None:
    photos = read_image_folder(fixtures["images"] / "reef_a")
    track = read_gpx(fixtures["gpx"])
    with pytest.raises(InputError, match="no fixes"):
        match_gpx(photos, track.iloc[:0])
    with pytest.raises(InputError, match="no datetime column"):
        match_gpx(photos.drop(columns=["datetime"]), track)
    shuffled = match_gpx(photos, track.iloc[::-1])  # order of the fixes does not matter
    assert shuffled["latitude"].tolist() == match_gpx(photos, track)["latitude"].tolist()


# --------------------------------------------------------------------------- depth logs


def test_depth_log_sets_depth_by_time(fixtures: dict[str, Path]) -> None:
    log = read_depth_log(fixtures["depth_log"], timezone="Etc/GMT+3")  # camera on UTC-3
    assert len(log) == len(DEPTH_LOG) and log["datetime"][0] == utc("2019-03-11 15:00:00")
    photos = read_image_folder(fixtures["images"] / "reef_a")
    table = match_depth(photos, log).set_index("image")
    assert table.loc["a1.jpg", "depth"] == 8.0
    assert table.loc["a2.jpg", "depth"] == pytest.approx(8.5)  # halfway from 8 to 9
    assert table["depth_matched"].tolist() == [True, True, False]  # a3: 10 s past the log
    assert table.loc["a3.jpg", "depth_log_gap_s"] == 10
    late = match_depth(photos, log, clock_offset=-2).set_index("image")
    assert late.loc["a2.jpg", "depth"] == 8.0  # 12:00:28 in the log's clock


def test_depth_log_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "log.csv"
    bad.write_text("Time,Depth\n2020:02:02 11:11:27,1.0\n2020:02:02 11:11:28,deep\n")
    with pytest.raises(CsvFormatError, match="unreadable sample") as info:
        read_depth_log(bad)
    assert info.value.line == 3
    no_time = tmp_path / "dive.csv"
    no_time.write_text("Elapsed Dive Time (hr:min),Depth (M)\n00:00,3.4\n")
    with pytest.raises(CsvFormatError, match="needs a time column"):
        read_depth_log(no_time)


@pytest.mark.shared_data
def test_real_paralenz_depths_match_the_authors_own_matching(shared_data: Path) -> None:
    """METADATA.csv records, per photo, the Paralenz camera's logged depth: matching the
    photos' local times to the camera logs must give exactly those depths."""
    folder = shared_data / GEOREF / "Paralenzcamera_files"
    photos = read_csv_metadata(
        folder / "METADATA.csv",
        columns={"image": "SourceFile", "datetime": "timeLOCAL"},
    )
    log = pd.concat([read_depth_log(p) for p in sorted(folder.glob("LOG*.CSV"))])
    table = validate_metadata(match_depth(photos, log)).table
    expected = pd.to_numeric(table["Depth.PARALENZ"], errors="coerce")
    known = expected.notna()
    assert known.sum() == 78 and table["depth_matched"].sum() == 78
    assert (table["depth"][known] == expected[known]).all()


# --------------------------------------------------------------------------- read_metadata


def test_read_metadata_dispatches_by_format(fixtures: dict[str, Path]) -> None:
    from quadrat.datasets.readers import METADATA_READERS, read_metadata

    assert METADATA_READERS.list() == ["coralnet", "csv", "images", "squidle"]
    folder = read_metadata(fixtures["images"])  # a folder: images
    pd.testing.assert_frame_equal(folder, read_image_folder(fixtures["images"]))
    rov = read_metadata(fixtures["rov"], dataset="puget")  # a file: csv
    pd.testing.assert_frame_equal(rov, read_csv_metadata(fixtures["rov"], dataset="puget"))
    coral = read_metadata(fixtures["coralnet"], "coralnet", site="lagoon", platform="diver")
    assert set(coral["platform"]) == {"diver"}
    assert coral.columns[-2:].tolist() == ["source_file", "source_line"]


def test_read_metadata_refuses_unknown_formats_and_unused_options(
    fixtures: dict[str, Path],
) -> None:
    from quadrat.datasets.readers import read_metadata

    with pytest.raises(InputError, match="did you mean 'squidle'") as err:
        read_metadata(fixtures["rov"], "squidel")
    assert err.value.param == "format"
    with pytest.raises(InputError, match="applies to format csv only, not to images") as err:
        read_metadata(fixtures["images"], columns={"image": "x"})
    assert err.value.param == "columns"
    # options left at their defaults are not "given"
    assert len(read_metadata(fixtures["images"], columns={}, depth_positive_up=False))
