"""quadrat.io.coralnet: CoralNet's annotation, labelset and cover CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quadrat.errors import CsvFormatError, InputError, UnknownLabelError
from quadrat.io.coralnet import (
    METADATA_COLUMNS,
    cover_table,
    read_annotations_csv,
    read_labelset_csv,
    read_percent_cover_csv,
    resolve_labels,
    write_annotations_csv,
    write_labelset_csv,
    write_percent_cover_csv,
)
from quadrat.limits import Limits


def write(tmp_path: Path, text: str, name: str = "a.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------- read_annotations_csv


def test_read_full_export(coralnet_fixture, coralnet_module):
    df = read_annotations_csv(coralnet_fixture["annotations"])
    assert len(df) == 27
    assert list(df.columns[:6]) == [
        "image",
        "row",
        "column",
        "label",
        "annotator",
        "date_annotated",
    ]
    assert df["row"].dtype == np.int64 and df["column"].dtype == np.int64
    assert df.attrs["label_column"] == "Label code"
    # The renamed aux column (Site) and all other metadata keep their CoralNet names.
    assert df.attrs["metadata_columns"][:2] == ["Date", "Site"]
    assert "Comments" in df.columns and "Height (cm)" in df.columns
    a = df[df["image"] == "reef_a.jpg"]
    assert list(zip(a["row"], a["column"], strict=True)) == list(coralnet_module.GRID)
    assert tuple(a["label"]) == coralnet_module.POINT_LABELS["reef_a.jpg"]
    assert (a["annotator"] == "alice").all()
    assert df["date_annotated"].dt.tz is not None
    assert df["date_annotated"].iloc[1] == pd.Timestamp("2024-03-05 10:01:00", tz="UTC")
    # Machine suggestions: percents in the file, fractions in the frame.
    c = df[df["image"] == "reef_c.jpg"]
    assert (c["machine_suggestion_1"] == "CCA").all()
    assert np.allclose(c["machine_confidence_1"], 0.81)
    assert np.allclose(c["machine_confidence_2"], 0.12)
    assert a["machine_suggestion_1"].isna().all() and a["machine_confidence_1"].isna().all()


def test_line_numbers_follow_the_file_including_multiline_fields(coralnet_fixture):
    df = read_annotations_csv(coralnet_fixture["annotations"])
    # reef_b's Comments hold a quoted newline: each of its records spans two lines.
    assert df["line"].tolist()[:10] == list(range(2, 12))
    assert df["line"].iloc[10] == 13
    assert df.loc[df["image"] == "reef_b.jpg", "Comments"].iloc[0] == "Turbid, some\nsurge"
    assert df["line"].iloc[-1] == 2 + 9 + 18 + 9 - 1


def test_read_moorea_form_drops_index_column(coralnet_fixture):
    moorea = read_annotations_csv(coralnet_fixture["annotations_moorea"])
    full = read_annotations_csv(coralnet_fixture["annotations"])
    assert "Unnamed: 0" not in moorea.columns and "" not in moorea.columns
    assert moorea.attrs["label_column"] == "Label"
    assert moorea["image"].tolist() == full["image"].tolist()
    assert moorea["label"].tolist() == full["label"].tolist()
    assert moorea["Aux1"].isna().all()
    assert moorea["line"].tolist() == list(range(2, 29))


def test_points_only_file(coralnet_fixture):
    df = read_annotations_csv(coralnet_fixture["points"])
    assert len(df) == 27
    assert df["label"].isna().all()
    assert df.attrs["label_column"] is None
    assert df.attrs["metadata_columns"] == []
    assert df["annotator"].isna().all() and df["date_annotated"].isna().all()


def test_label_id_and_both_label_columns(tmp_path):
    ids = read_annotations_csv(
        write(tmp_path, "Name,Row,Column,Label ID\na.jpg,1,2,74\na.jpg,3,4,\n")
    )
    assert ids.attrs["label_column"] == "Label ID"
    assert ids["label"].tolist()[0] == "74" and pd.isna(ids["label"].iloc[1])
    both = read_annotations_csv(
        write(tmp_path, "Name,Row,Column,Label code,Label ID\na.jpg,1,2,Porit,74\n", "b.csv")
    )
    assert both["label"].tolist() == ["Porit"] and both["label_id"].tolist() == ["74"]


def test_headers_are_case_space_and_underscore_insensitive(tmp_path):
    df = read_annotations_csv(
        write(
            tmp_path,
            "NAME, row ,Column,label_code,annotator,DATE ANNOTATED\n"
            "x.jpg,5,6,Sand,bob,2024-01-02 03:04:05+00:00\n",
        )
    )
    assert df[["image", "row", "column", "label", "annotator"]].iloc[0].tolist() == [
        "x.jpg",
        5,
        6,
        "Sand",
        "bob",
    ]
    assert df["date_annotated"].iloc[0] == pd.Timestamp("2024-01-02 03:04:05", tz="UTC")


def test_values_are_stripped_and_blank_lines_skipped(tmp_path):
    path = write(
        tmp_path, "\ufeffName,Row,Column,Label\n a.jpg , 7 ,8, CCA \n\n,,,\nb.jpg,0,0,\n\n"
    )
    df = read_annotations_csv(path)  # BOM, spaces, blank and empty lines
    assert df["image"].tolist() == ["a.jpg", "b.jpg"]
    assert df["row"].tolist() == [7, 0]
    assert df["label"].iloc[0] == "CCA" and pd.isna(df["label"].iloc[1])
    assert df["line"].tolist() == [2, 5]


def test_unknown_columns_are_kept_as_metadata(tmp_path):
    df = read_annotations_csv(write(tmp_path, "Name,Transect,Row,Column,Label\na.jpg,T4,1,2,X\n"))
    assert df["Transect"].tolist() == ["T4"]
    assert df.attrs["metadata_columns"] == ["Transect"]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("Name,Row,Column\na.jpg,1,2\na.jpg,12.5,3\n", 3, "'12.5'"),
        ("Name,Row,Column\na.jpg,-4,2\n", 2, "'-4'"),
        ("Name,Row,Column\na.jpg,1,abc\n", 2, "'abc'"),
        ("Name,Row,Column\na.jpg,,3\n", 2, "Row is empty"),
        ("Name,Row,Column\n,1,3\n", 2, "Name is empty"),
        ("Name,Row,Column\na.jpg,1,2\na.jpg,1,2,3\n", 3, "4 fields but the header has 3"),
        ("Name,Row,Column\na.jpg,1,2,9\n", 2, "4 fields"),
        ("Name,Row,Column,Machine confidence 1\na.jpg,1,2,150\n", 2, "0-100"),
        ("Name,Row,Column,Date annotated\na.jpg,1,2,yesterday\n", 2, "'yesterday'"),
        ("Name,Row,Column,Row\na.jpg,1,2,3\n", 1, "duplicate column"),
    ],
)
def test_bad_values_name_file_line_and_value(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(CsvFormatError) as err:
        read_annotations_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert fragment in message
    assert err.value.line == line


def test_counts_other_bad_rows(tmp_path):
    path = write(tmp_path, "Name,Row,Column\na.jpg,x,1\na.jpg,y,1\na.jpg,z,1\n")
    with pytest.raises(CsvFormatError, match=r"2 more such rows"):
        read_annotations_csv(path)


@pytest.mark.parametrize("header", ["Row,Column,Label", "Name,Column", "Image,Row,Column", "a,b,c"])
def test_missing_required_columns(tmp_path, header):
    path = write(tmp_path, header + "\n" + ",".join("1" * len(header.split(","))) + "\n")
    with pytest.raises(CsvFormatError, match="missing required column") as err:
        read_annotations_csv(path)
    assert str(path) in str(err.value) and "line 1" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(CsvFormatError, match="empty file") as err:
        read_annotations_csv(path)
    assert str(path) in str(err.value)


def test_not_a_csv(tmp_path, image_fixtures):
    with pytest.raises(CsvFormatError, match=r"not a CSV|not a UTF-8"):
        read_annotations_csv(image_fixtures["rgb"])
    latin = write(tmp_path, "Name,Row,Column\ncaf\u00e9.jpg,1,2\n", encoding="latin-1")
    with pytest.raises(CsvFormatError, match="not a UTF-8 text CSV"):
        read_annotations_csv(latin)
    with pytest.raises(CsvFormatError, match="file not found"):
        read_annotations_csv(tmp_path / "missing.csv")


def test_header_only_file_gives_empty_frame(tmp_path):
    df = read_annotations_csv(write(tmp_path, "Name,Row,Column,Label\n"))
    assert len(df) == 0 and list(df.columns[:4]) == ["image", "row", "column", "label"]


def test_100k_rows_parse(tmp_path, coralnet_fixture):
    """The speed figure (< 1 s) is benchmarks/parse_and_crop.py's, not a test's."""
    text = Path(coralnet_fixture["annotations"]).read_text()
    header, *rows = text.splitlines()
    rows = [r for r in rows if "Turbid" not in r and r != 'surge"' and not r.startswith("surge")]
    big = [header] + [rows[i % len(rows)] for i in range(100_000)]
    path = write(tmp_path, "\n".join(big) + "\n", "big.csv")
    df = read_annotations_csv(path, limits=Limits(points_per_image=100_000))
    assert len(df) == 100_000
    assert df["line"].iloc[-1] == 100_001


# ---------------------------------------------------------------- labelsets


def test_read_labelset_forms(coralnet_fixture, coralnet_module):
    for key in ("labelset", "labelset_moorea"):
        ls = read_labelset_csv(coralnet_fixture[key])
        assert list(ls.columns) == ["label_id", "name", "short_code", "functional_group"]
        assert str(ls["label_id"].dtype) == "Int64"
        expected = [(i, name, code, group) for i, code, name, group in coralnet_module.LABELS]
        assert [tuple(r) for r in ls.itertuples(index=False)] == expected


def test_read_labelset_coralnet_export_form(tmp_path):
    ls = read_labelset_csv(write(tmp_path, "Label ID,Short code\n15,Acrop\n28,Porit\n"))
    assert ls["label_id"].tolist() == [15, 28]
    assert ls["short_code"].tolist() == ["Acrop", "Porit"]
    assert ls["name"].isna().all() and ls["functional_group"].isna().all()


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("Label ID,Short Code\n1,Porit\n2,CCA\n3,porit\n", "duplicate short code 'porit'", 4),
        ("Label ID,Short Code\n1,A\n1,B\n", "duplicate Label ID", 3),
        ("Label ID,Short Code\nx1,A\n", "'x1'", 2),
        ("Label ID,Short Code\n1,\n", "Short Code is empty", 2),
        ("Label ID,Name\n1,A\n", "missing a Short Code column", 1),
    ],
)
def test_labelset_errors(tmp_path, text, fragment, line):
    path = write(tmp_path, text)
    with pytest.raises(CsvFormatError) as err:
        read_labelset_csv(path)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"{path}, line {line}: ")


# ---------------------------------------------------------------- resolve_labels


def test_resolve_by_code_name_and_id(coralnet_fixture):
    ls = read_labelset_csv(coralnet_fixture["labelset"])
    values = pd.Series(["Porit", "porit", "Porites", "SAND", "101", "crustose", None, " Off "])
    with pytest.raises(UnknownLabelError) as err:
        resolve_labels(values, ls, path="ann.csv", lines=range(2, 10))
    assert "'crustose' (line 7)" in str(err.value)
    assert str(err.value).startswith("ann.csv, line 7: 1 label(s) not in the labelset")
    ok = values.drop(5)
    codes = resolve_labels(ok, ls)
    assert codes.tolist()[:5] == ["Porit", "Porit", "Porit", "Sand", "CCA"]
    assert pd.isna(codes.iloc[5]) and codes.iloc[6] == "Off"
    assert codes.index.tolist() == ok.index.tolist()


def test_resolve_name_case_insensitive_and_codes_win(tmp_path):
    ls = read_labelset_csv(write(tmp_path, "Label ID,Short Code,Name\n1,Sand,Rubble\n2,Rub,Sand\n"))
    # 'Sand' is a code (label 1) and a name (label 2): the code wins, as documented.
    assert resolve_labels(pd.Series(["sand", "rubble", "2"]), ls).tolist() == [
        "Sand",
        "Sand",
        "Rub",
    ]


def test_unknown_labels_list_first_few(coralnet_fixture):
    ls = read_labelset_csv(coralnet_fixture["labelset"])
    values = pd.Series([f"X{i}" for i in range(8)] + ["X0"])
    with pytest.raises(UnknownLabelError, match="and 3 more") as err:
        resolve_labels(values, ls, lines=np.arange(2, 11))
    assert err.value.line == 2
    assert err.value.value == ["X0", "X1", "X2", "X3", "X4"]


# ---------------------------------------------------------------- writers: annotations


def test_written_export_is_coralnets_form_byte_for_byte(coralnet_fixture, tmp_path):
    df = read_annotations_csv(coralnet_fixture["annotations"])
    out = write_annotations_csv(df, tmp_path / "out.csv")
    assert out.read_text() == Path(coralnet_fixture["annotations"]).read_text()


def test_round_trip_annotations(coralnet_fixture, tmp_path):
    for key in ("annotations", "annotations_moorea", "points"):
        df = read_annotations_csv(coralnet_fixture[key])
        back = read_annotations_csv(write_annotations_csv(df, tmp_path / f"{key}.csv"))
        common = [c for c in df.columns if c != "line"]
        if key != "annotations":  # all-empty optional columns are not written back
            common = [c for c in common if df[c].notna().any()]
        pd.testing.assert_frame_equal(
            back[common].reset_index(drop=True), df[common].reset_index(drop=True)
        )
        assert back.attrs["label_column"] == df.attrs["label_column"]


def test_points_only_written_as_points_only(coralnet_fixture, tmp_path):
    df = read_annotations_csv(coralnet_fixture["points"])
    out = write_annotations_csv(df, tmp_path / "p.csv")
    assert lines_of(out)[0] == "Name,Row,Column"


def test_write_minimal_frame_and_label_header(tmp_path):
    df = pd.DataFrame(
        {"image": ["a.jpg", "a.jpg"], "row": [1, 2], "column": [3, 4], "label": ["A", None]}
    )
    out = write_annotations_csv(df, tmp_path / "m.csv")
    assert lines_of(out) == ["Name,Row,Column,Label", "a.jpg,1,3,A", "a.jpg,2,4,"]
    out = write_annotations_csv(df, tmp_path / "m.csv", label_header="Label code")
    assert lines_of(out)[0] == "Name,Row,Column,Label code"


def test_write_machine_confidences_as_rounded_percents(tmp_path):
    df = pd.DataFrame(
        {
            "image": ["a.jpg"] * 3,
            "row": [1, 2, 3],
            "column": [1, 2, 3],
            "label": ["A", "B", "A"],
            "annotator": ["robot"] * 3,
            "date_annotated": pd.to_datetime(["2024-01-01 00:00:00"] * 3).tz_localize("UTC"),
            "machine_suggestion_1": ["A", "B", "A"],
            "machine_confidence_1": [0.625, 0.004, 1.0],
            "machine_suggestion_2": ["B", "A", None],
            "machine_confidence_2": [0.375, 0.996, np.nan],
        }
    )
    out = lines_of(write_annotations_csv(df, tmp_path / "s.csv"))
    header = out[0].split(",")
    assert header[4:8] == [
        "Annotator",
        "Date annotated",
        "Machine suggestion 1",
        "Machine confidence 1",
    ]
    assert header[-2:] == ["Machine suggestion 5", "Machine confidence 5"]
    assert out[1].split(",")[4:10] == ["robot", "2024-01-01 00:00:00+00:00", "A", "63", "B", "38"]
    assert out[2].split(",")[6:10] == ["B", "0", "A", "100"]
    assert out[3].split(",")[6:10] == ["A", "100", "", ""]


def test_write_rejects_bad_frames_without_leaving_files(tmp_path):
    target = tmp_path / "x.csv"
    with pytest.raises(InputError, match="lacks column"):
        write_annotations_csv(pd.DataFrame({"image": ["a"]}), target)
    bad_conf = pd.DataFrame(
        {
            "image": ["a"],
            "row": [1],
            "column": [1],
            "machine_suggestion_1": ["A"],
            "machine_confidence_1": [63],
        }
    )
    with pytest.raises(InputError, match="0-1 fraction"):
        write_annotations_csv(bad_conf, target)
    with pytest.raises(InputError, match="non-negative integers"):
        write_annotations_csv(pd.DataFrame({"image": ["a"], "row": [-1], "column": [1]}), target)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_replace(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old\n")
    df = pd.DataFrame({"image": ["a.jpg"], "row": [1], "column": [2], "label": ["A"]})
    write_annotations_csv(df, target)
    assert lines_of(target)[1] == "a.jpg,1,2,A"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_metadata_column_names_are_coralnets():
    assert METADATA_COLUMNS[0] == "Date" and METADATA_COLUMNS[-1] == "Comments"
    assert len(METADATA_COLUMNS) == 17


# ---------------------------------------------------------------- writers: labelset


def test_labelset_round_trip(coralnet_fixture, tmp_path):
    ls = read_labelset_csv(coralnet_fixture["labelset_moorea"])
    out = write_labelset_csv(ls, tmp_path / "labelset.csv")
    assert lines_of(out)[0] == "Label ID,Short Code,Name,Functional Group"
    assert lines_of(out)[1].startswith("59,Acrop,")  # sorted by code, as CoralNet exports
    back = read_labelset_csv(out)
    key = ["short_code"]
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True), ls.sort_values(key).reset_index(drop=True)
    )


def test_labelset_export_form_only_ids_and_codes(tmp_path):
    ls = read_labelset_csv(write(tmp_path, "Label ID,Short Code\n28,Porit\n15,Acrop\n"))
    out = write_labelset_csv(ls, tmp_path / "o.csv")
    assert lines_of(out) == ["Label ID,Short Code", "15,Acrop", "28,Porit"]


# ---------------------------------------------------------------- covers


def _points(images: dict[str, str], status: str = "confirmed") -> pd.DataFrame:
    rows = []
    for i, (name, labels) in enumerate(images.items(), start=1):
        for label in labels:
            rows.append({"image_id": i, "image_name": name, "status": status, "label": label})
    return pd.DataFrame(rows)


def test_cover_matches_coralnet_export_tests(tmp_path):
    """CoralNet's own test: 3 images of 5 points, labels A/B."""
    points = _points({"1.jpg": "ABABA", "2.jpg": "ABBBB", "3.jpg": "AAAAA"})
    cover = cover_table(points)
    out = write_percent_cover_csv(cover, tmp_path / "covers.csv")
    assert lines_of(out) == [
        "Image ID,Image name,Annotation status,Points,A,B",
        "1,1.jpg,Confirmed,5,60.000,40.000",
        "2,2.jpg,Confirmed,5,20.000,80.000",
        "3,3.jpg,Confirmed,5,100.000,0.000",
        "ALL IMAGES,,,,60.000,40.000",
    ]


def test_cover_single_image_has_no_summary_row(tmp_path):
    out = write_percent_cover_csv(cover_table(_points({"1.jpg": "ABABA"})), tmp_path / "c.csv")
    assert lines_of(out) == [
        "Image ID,Image name,Annotation status,Points,A,B",
        "1,1.jpg,Confirmed,5,60.000,40.000",
    ]


def test_cover_excludes_unannotated_and_marks_unconfirmed(tmp_path):
    confirmed = _points({"1.jpg": "ABABA"})
    robot = _points({"2.jpg": "ABBBB"}, status="unconfirmed").assign(image_id=2)
    partial = _points({"3.jpg": "AA"}).assign(image_id=3)
    partial = pd.concat([partial, partial.iloc[:1].assign(label=None)])  # one point unlabelled
    mixed = _points({"4.jpg": "AB"}).assign(image_id=4)
    mixed.loc[mixed.index[1], "status"] = "Unconfirmed"
    cover = cover_table(pd.concat([confirmed, robot, partial, mixed], ignore_index=True))
    assert cover["Image name"].tolist() == ["1.jpg", "2.jpg", "4.jpg"]
    assert cover["Annotation status"].tolist() == ["Confirmed", "Unconfirmed", "Unconfirmed"]
    out = write_percent_cover_csv(cover.iloc[:2], tmp_path / "c.csv")
    assert lines_of(out)[1:] == [
        "1,1.jpg,Confirmed,5,60.000,40.000",
        "2,2.jpg,Unconfirmed,5,20.000,80.000",
        "ALL IMAGES,,,,40.000,60.000",
    ]


def test_cover_summary_is_mean_of_images_not_pooled_points(tmp_path):
    cover = cover_table(_points({"a.jpg": "A", "b.jpg": "BBBB"}))
    out = write_percent_cover_csv(cover, tmp_path / "c.csv")
    assert lines_of(out)[-1] == "ALL IMAGES,,,,50.000,50.000"  # pooled would be 20/80


def test_cover_columns_follow_labelset_groups_then_codes(coralnet_fixture):
    annotations = read_annotations_csv(coralnet_fixture["annotations"])
    ls = read_labelset_csv(coralnet_fixture["labelset"])
    cover = cover_table(annotations.rename(columns={"image": "image_name"}), ls)
    # Algae (CCA) < Hard coral (Acrop, Porit) < Other (Off) < Soft Substrate (Sand)
    assert list(cover.columns) == [
        "Image ID",
        "Image name",
        "Annotation status",
        "Points",
        "CCA",
        "Acrop",
        "Porit",
        "Off",
        "Sand",
    ]
    assert cover["Image ID"].tolist() == cover["Image name"].tolist()  # id defaults to name
    assert cover["Points"].tolist() == [9, 9, 9]


def test_cover_values_match_fixture(coralnet_fixture, coralnet_module):
    annotations = read_annotations_csv(coralnet_fixture["annotations"])
    ls = read_labelset_csv(coralnet_fixture["labelset"])
    cover = cover_table(annotations.rename(columns={"image": "image_name"}), ls).set_index(
        "Image name"
    )
    for name, expected in coralnet_module.EXPECTED["cover"].items():
        for code, value in expected.items():
            assert cover.loc[name, code] == pytest.approx(value)
    assert np.allclose(cover[[c for c in ls["short_code"]]].sum(axis=1), 100.0)


def test_cover_label_order_and_errors():
    points = _points({"1.jpg": "AB"})
    assert list(cover_table(points, label_order=["B", "A", "C"]).columns[4:]) == ["B", "A", "C"]
    with pytest.raises(UnknownLabelError):
        cover_table(points, label_order=["A"])
    with pytest.raises(InputError, match="status"):
        cover_table(points.assign(status="done"))
    with pytest.raises(InputError, match="image_name"):
        cover_table(points.drop(columns="image_name"))


def test_cover_round_trip(tmp_path):
    points = _points({"1.jpg": "ABABA", "2.jpg": "ABBBC", "3.jpg": "AAAAA"})
    cover = cover_table(points)
    back = read_percent_cover_csv(write_percent_cover_csv(cover, tmp_path / "c.csv"))
    assert back.attrs["all_images"] == pytest.approx({"A": 60.0, "B": 33.333, "C": 6.667}, abs=1e-3)
    pd.testing.assert_frame_equal(
        back.drop(columns="Image ID"), cover.drop(columns="Image ID"), check_dtype=False, atol=5e-4
    )
    assert back["Image ID"].tolist() == ["1", "2", "3"]


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_moorea_annotation_export(shared_data):
    folder = shared_data / "moorea-lter-2008"
    df = read_annotations_csv(folder / "annotations.csv")
    assert len(df) == 4200
    assert df["image"].nunique() == 21
    assert (df.groupby("image").size() == 200).all()
    assert df["label"].value_counts().to_dict() == {
        "Porit": 1860,
        "CCA": 1412,
        "Sand": 518,
        "Turf": 292,
        "Macro": 72,
        "Off": 42,
        "Monti": 2,
        "Fung": 1,
        "Pocill": 1,
    }
    assert df.attrs["label_column"] == "Label"
    assert df.attrs["metadata_columns"] == list(METADATA_COLUMNS)
    # Only the 800x800 copy was machine-annotated (robot, with top-5 suggestions).
    robot = df["machine_suggestion_1"].notna()
    assert robot.sum() == 200
    assert set(df.loc[robot, "image"]) == {"mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"}
    assert (df.loc[robot, "annotator"] == "robot").all()
    assert (df.loc[~robot, "annotator"] == "Imported").all()
    assert df.loc[robot, "machine_confidence_1"].iloc[0] == pytest.approx(0.93)
    assert df["line"].iloc[0] == 2 and df["line"].iloc[-1] == 4201

    labelset = read_labelset_csv(folder / "labelset.csv")
    assert len(labelset) == 20
    codes = resolve_labels(df["label"], labelset, path=folder / "annotations.csv", lines=df["line"])
    assert codes.tolist() == df["label"].tolist()


@pytest.mark.shared_data
def test_moorea_round_trip(shared_data, tmp_path):
    df = read_annotations_csv(shared_data / "moorea-lter-2008" / "annotations.csv")
    back = read_annotations_csv(write_annotations_csv(df, tmp_path / "moorea.csv"))
    columns = ["image", "row", "column", "label", "annotator", "date_annotated", "Comments"]
    columns += [f"machine_{kind}_{k}" for k in range(1, 6) for kind in ("suggestion", "confidence")]
    for column in columns:
        pd.testing.assert_series_equal(back[column], df[column])


@pytest.mark.shared_data
def test_global_label_list(shared_data):
    labels = read_labelset_csv(shared_data / "coralnet-labels" / "labels.csv")
    assert len(labels) == 7542
    assert labels["label_id"].notna().all()
    assert labels["functional_group"].notna().all()
    # Source labelsets may use their own codes: Moorea's 'Porit' is 'Porites' site-wide,
    # so resolving Moorea labels against the global list names the unknown codes.
    moorea = read_annotations_csv(shared_data / "moorea-lter-2008" / "annotations.csv")
    with pytest.raises(UnknownLabelError, match="'Porit'"):
        resolve_labels(moorea["label"], labels, lines=moorea["line"])
    assert resolve_labels(pd.Series(["Porites", "CCA", "74"]), labels).tolist() == [
        "Porites",
        "CCA",
        "Porites",
    ]


@pytest.mark.shared_data
def test_moorea_cover(shared_data, tmp_path):
    folder = shared_data / "moorea-lter-2008"
    df = read_annotations_csv(folder / "annotations.csv")
    labelset = read_labelset_csv(folder / "labelset.csv")
    cover = cover_table(df.rename(columns={"image": "image_name"}), labelset)
    assert len(cover) == 21 and len(cover.columns) == 4 + 20
    assert np.allclose(cover.iloc[:, 4:].sum(axis=1), 100.0)
    out = write_percent_cover_csv(cover, tmp_path / "covers.csv")
    summary = read_percent_cover_csv(out).attrs["all_images"]
    assert summary["Porit"] == pytest.approx(1860 / 4200 * 100, abs=1e-3)  # equal weights


# ---------------------------------------------------------------- line numbers, edge cases


def _reference_lines(text: str) -> list[int]:
    """Start line of each non-blank data record, by the standard library's csv reader."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    starts, previous = [], 0
    for record in reader:
        if record and any(cell != "" for cell in record):
            starts.append(previous + 1)
        previous = reader.line_num
    return starts[1:]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_match_csv_module(tmp_path, newline):
    rng = np.random.default_rng(0)
    records = ["Name,Row,Column,Label,Comments"]
    for i in range(300):
        kind = rng.integers(0, 5)
        comment = {
            0: "",
            1: "plain",
            2: '"with, comma"',
            3: f'"two{newline}lines and ""quotes"""',
            4: f'"caf\u00e9{newline}{newline}three"',
        }[int(kind)]
        records.append(f"img{i % 7}.jpg,{i},{2 * i},L{i % 3},{comment}")
        if rng.random() < 0.1:
            records.append("")  # blank line
    text = newline.join(records) + newline
    path = write(tmp_path, text)
    df = read_annotations_csv(path)
    assert len(df) == 300
    assert df["line"].tolist() == _reference_lines(text)
    assert df["row"].tolist() == list(range(300))
    assert df["Comments"].str.contains("\u00e9", regex=False).fillna(False).any()


def test_crlf_and_bom_fast_path(tmp_path):
    df = read_annotations_csv(
        write(tmp_path, "\ufeffName,Row,Column\r\na.jpg,1,2\r\nb.jpg,3,4\r\n")
    )
    assert df["image"].tolist() == ["a.jpg", "b.jpg"] and df["line"].tolist() == [2, 3]


def test_whitespace_only_line_is_tolerated(tmp_path):
    df = read_annotations_csv(write(tmp_path, "Name,Row,Column\na.jpg,1,2\n   \nb.jpg,3,4\n"))
    assert df["image"].tolist() == ["a.jpg", "b.jpg"]


def test_100k_rows_with_quoted_line_breaks_parse(tmp_path):
    """The speed figure (< 1.5 s) is benchmarks/parse_and_crop.py's, not a test's."""
    rows = ["Name,Row,Column,Label,Comments"]
    rows += [
        f"img{i % 50}.jpg,{i % 2000},{i % 1500},L{i % 9}," + ('"a,\nb"' if i % 3 == 0 else "ok")
        for i in range(100_000)
    ]
    path = write(tmp_path, "\n".join(rows) + "\n", "bigq.csv")
    df = read_annotations_csv(path, limits=Limits(points_per_image=100_000))
    assert len(df) == 100_000
    assert df["line"].iloc[-1] == 1 + 100_000 + 33_334 - (1 if 99_999 % 3 == 0 else 0)
