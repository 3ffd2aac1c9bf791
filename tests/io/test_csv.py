"""quadrat.io.csv: the one lenient CSV reader (strings, exact lines, clear errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quadrat.errors import CsvFormatError
from quadrat.io.csv import header_key, read_csv, read_header


def _write(tmp_path: Path, data: str | bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def test_every_cell_a_string_and_lines_exact(tmp_path: Path) -> None:
    text = '\ufeffName,Value\n\na,001\n"b\nc",""\n\n,\nd,NA\n'
    table = read_csv(_write(tmp_path, text))
    assert table.header == ["Name", "Value"]
    assert table.frame["Name"].tolist() == ["a", "b\nc", "d"]
    assert table.frame["Value"].tolist() == ["001", "", "NA"]
    assert table.lines.tolist() == [3, 4, 8]


def test_index_column_dropped_and_repeats_renamed(tmp_path: Path) -> None:
    table = read_csv(_write(tmp_path, ",a,b,a\n0,1,2,3\n"))
    assert table.header == ["a", "b", "a"]
    assert list(table.frame.columns) == ["a", "b", "a.1"]
    assert table.frame.iloc[0].tolist() == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"a,b\x00\n1,2\n", "binary content"),
        (b"a,b\n\xff\xfe,1\n", "not a UTF-8 text CSV"),
    ],
)
def test_not_a_csv(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message) as err:
        read_csv(_write(tmp_path, data))
    assert err.value.path == tmp_path / "t.csv"


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="3 fields but the header has 2") as err:
        read_csv(_write(tmp_path, "a,b\n1,2\n1,2,3\n"))
    assert err.value.line == 3


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="file not found"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(CsvFormatError, match="is a folder"):
        read_csv(tmp_path)
    with pytest.raises(CsvFormatError, match="file not found"):
        read_header(tmp_path / "nope.csv")


def test_header_key_one_normalisation() -> None:
    assert header_key(" Pose.Lat ") == header_key("pose_lat") == "pose lat"
    assert header_key("Label  code") == header_key("label-code") == "label code"


def test_read_header_reads_first_record(tmp_path: Path) -> None:
    assert read_header(_write(tmp_path, "\ufeff a ,b\n1,2\n")) == ["a", "b"]
