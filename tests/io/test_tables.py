"""quadrat.io.tables: one read_table / write_table for Parquet and CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quadrat.errors import CsvFormatError, InputError, NotFoundError
from quadrat.io.tables import read_table, write_table


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "depth": [1.5, 2.0]})
    path = write_table(frame, tmp_path / f"t{suffix}")
    pd.testing.assert_frame_equal(read_table(path), frame)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_csv_line_index_and_index_column_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(",a,b\n0,1,x\n1,2,y\n", encoding="utf-8")
    frame = read_table(path, line_index=True)
    assert list(frame.columns) == ["a", "b"]
    assert frame.index.tolist() == [2, 3]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="table not found"):
        read_table(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="unknown table format"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(CsvFormatError, match="cannot read the table"):
        read_table(bad)
