"""Dataset reports: before/after counts and the sites map."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quadrat.datasets.subsample import subsample_sites
from quadrat.io.tables import write_table
from quadrat.reports.datasets import counts_before_after, write_subsample_report
from tests.data.tracks.data import site_table, straight_transect


def survey() -> pd.DataFrame:
    a = site_table(*straight_transect(600, 0.5), site="a", dataset="one").assign(label="Kelp")
    b = site_table(*straight_transect(50, 0.5), site="b", dataset="two").assign(label="Sand")
    return pd.concat([a, b], ignore_index=True)


def test_counts_per_dataset_site_and_label() -> None:
    before = survey()
    after = subsample_sites(before, min_population=100).kept
    counts = counts_before_after(before, after, "label").set_index(["level", "name"])
    assert counts.loc[("dataset", "one"), ["before", "after"]].tolist() == [600, 121]
    assert counts.loc[("site", "b"), ["before", "after", "kept_fraction"]].tolist() == [50, 50, 1.0]
    assert counts.loc[("label", "Kelp"), "after"] == 121


def test_report_files_are_written(tmp_path: Path) -> None:
    before = survey()
    result = subsample_sites(before, min_population=100)
    written = write_subsample_report(before, result.kept, result.sites, tmp_path / "r")
    assert [p.name for p in written] == ["map.png", "counts.csv", "sites.csv"]
    assert (tmp_path / "r" / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_write_table_by_suffix(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    pd.testing.assert_frame_equal(
        pd.read_parquet(write_table(frame, tmp_path / "t.parquet")), frame
    )
    pd.testing.assert_frame_equal(pd.read_csv(write_table(frame, tmp_path / "t.csv")), frame)
