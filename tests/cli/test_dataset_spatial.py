"""``quadrat dataset subsample|partition`` from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.data.tracks.data import few_positions, site_table, straight_transect
from typer.testing import CliRunner

from quadrat.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["dataset", *args])
    return result.exit_code, result.output


@pytest.fixture
def survey_csv(tmp_path: Path) -> Path:
    """Two sites: a 0.5 m transect of 1001 images and a drop camera of 2000 at 4 fixes."""
    lat, lon = straight_transect(1001, 0.5)
    transect = site_table(lat, lon, site="transect")
    transect["biota"] = np.where(np.arange(1001) < 500, "Kelp", "Sand")
    drop = few_positions(2000, 4)
    drop["biota"] = "Sponges"
    path = tmp_path / "survey.csv"
    pd.concat([transect, drop], ignore_index=True).to_csv(path, index=False)
    return path


def test_subsample_writes_kept_rows_and_a_report(survey_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.parquet"
    code, output = run(
        "subsample", str(survey_csv), "-o", str(out), "--min", "100", "--target", "150",
        "--factors", "1,2,4", "--report", str(tmp_path / "report"), "--label-column", "biota",
    )  # fmt: skip
    assert code == 0, output
    kept = pd.read_parquet(out)
    # transect: 2.5 m -> 201, 5 m -> 101 < 150, so factor 1; drop camera: 150 evenly spaced
    assert (kept["site"] == "transect").sum() == 201
    assert (kept["site"] == "drop-camera").sum() == 150
    assert kept["site"].iloc[0] == "drop-camera"  # evenly spaced sites come first
    counts = pd.read_csv(tmp_path / "report" / "counts.csv")
    kelp = counts[(counts["level"] == "label") & (counts["name"] == "Kelp")].iloc[0]
    assert (kelp["before"], kelp["after"]) == (500, 100)
    assert (tmp_path / "report" / "map.png").stat().st_size > 1000
    sites = pd.read_csv(tmp_path / "report" / "sites.csv")
    assert sites.set_index("site").loc["transect", "method"] == "spatial"
    assert "kept 351 of 3,001 rows" in output


def test_subsample_bad_input_is_one_red_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"site": ["a"], "latitude": [1.0]}).to_csv(path, index=False)
    code, output = run("subsample", str(path), "-o", str(tmp_path / "out.csv"))
    assert code == 1
    assert "missing column(s) dataset, longitude" in output
    assert not (tmp_path / "out.csv").exists()
    code, output = run("subsample", str(tmp_path / "absent.csv"), "-o", str(tmp_path / "out.csv"))
    assert code == 4 and "absent.csv: table not found" in output  # NotFoundError


def test_subsample_non_numeric_latitude_names_the_row(tmp_path: Path) -> None:
    table = site_table(*straight_transect(10))
    table["latitude"] = table["latitude"].astype(object)
    table.loc[4, "latitude"] = "n/a?"
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    code, output = run("subsample", str(path), "-o", str(tmp_path / "out.csv"))
    assert code == 1
    assert "bad.csv: line 6: latitude" in output  # data row 4 is line 6 (header is line 1)


def test_partition_spatial_and_by_site(survey_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "split.csv"
    code, output = run("partition", str(survey_csv), "-o", str(out), "--label-column", "biota")
    assert code == 0, output
    split = pd.read_csv(out)
    assert set(split["partition"]) == {"train", "test", "excluded"}
    balance = pd.read_csv(tmp_path / "split_balance.csv").set_index("label")
    assert balance.loc["Kelp", "train_fraction"] >= 0.5
    again = tmp_path / "again.csv"
    assert run("partition", str(survey_csv), "-o", str(again), "--label-column", "biota")[0] == 0
    pd.testing.assert_series_equal(split["partition"], pd.read_csv(again)["partition"])

    code, output = run(
        "partition", str(survey_csv), "-o", str(out), "--method", "site", "--test-fraction", "0.5"
    )
    assert code == 0, output
    per_site = pd.read_csv(out).groupby("site")["partition"].nunique()
    assert (per_site == 1).all()


def test_partition_spatial_needs_a_label_column(survey_csv: Path, tmp_path: Path) -> None:
    code, output = run("partition", str(survey_csv), "-o", str(tmp_path / "o.csv"))
    assert code == 1 and "--label-column" in output
    code, output = run(
        "partition", str(survey_csv), "-o", str(tmp_path / "o.csv"), "--label-column", "x"
    )
    assert code == 1 and "no label column 'x'" in output


@pytest.mark.shared_data
def test_seattle_rov_images(shared_data: Path, tmp_path: Path) -> None:
    raw = pd.read_csv(shared_data / "seattle-rov-patches" / "rov_images_2022.csv")
    table = pd.DataFrame(
        {
            "dataset": "seattle-rov",
            "site": raw["site"],
            "image": raw["img_name"],
            "latitude": raw["lat"],
            "longitude": raw["lon"],
            "datetime": raw["date"] + " " + raw["time"],
        }
    )
    path = tmp_path / "seattle.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "kept.csv"
    code, output = run(
        "subsample", str(path), "-o", str(out), "--min", "50", "--target", "100",
        "--factors", "1,2,4", "--report", str(tmp_path / "report"),
    )  # fmt: skip
    assert code == 0, output
    assert "latitude 0, longitude 0 treated as missing" in output
    sites = pd.read_csv(tmp_path / "report" / "sites.csv")
    assert len(sites) == 8
    kept = pd.read_csv(out)
    assert 0 < len(kept) < len(table)
    assert (sites["kept"] >= np.minimum(sites["rows"], 1)).all()
    code, output = run(
        "partition", str(path), "-o", str(tmp_path / "split.csv"), "--method", "site"
    )
    assert code == 0, output


@pytest.mark.shared_data
def test_georeferenced_photoquadrat_positions(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "georef-photoquadrats" / "MAP_example" / "density_data"
    raw = pd.read_csv(folder / "Density_Data_pardelas2019.csv")
    table = pd.DataFrame(
        {
            "dataset": "pardelas2019",
            "site": raw["site"],
            "image": raw["Name photo"],
            "latitude": raw["Latitude"],
            "longitude": raw["Longitude"],
        }
    )
    path = tmp_path / "map.csv"
    table.to_csv(path, index=False)
    code, output = run("subsample", str(path), "-o", str(tmp_path / "kept.csv"), "--min", "50",
                       "--target", "100", "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, output
    sites = pd.read_csv(tmp_path / "r" / "sites.csv")
    # 560 photos at only 6 distinct fixes: thinned by position, not by distance
    assert sites.loc[0, "method"] == "even"


def test_old_spellings_still_work_with_a_warning(survey_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.csv"
    code, output = run("subsample", str(survey_csv), str(out), "--min", "100")
    assert code == 0, output
    assert "the OUT argument is deprecated; use --out/-o" in output
    assert out.exists()
    split = tmp_path / "split.csv"
    code, output = run(
        "partition", str(survey_csv), "-o", str(split), "--label-column", "biota", "--strict", "5"
    )
    assert code == 0, output
    assert "--strict is deprecated; use --min-gap" in output
