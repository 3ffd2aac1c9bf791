"""``quadrat dataset validate``: summary, every bad row, drop/strict, atomic output."""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd
import pytest
from tests.data.metadata.data import make_metadata_fixtures
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.datasets.schema import COLUMNS

runner = CliRunner()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_metadata_fixtures(tmp_path_factory.mktemp("metadata-cli"))


def validate(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, ["dataset", "validate", *map(str, args)])
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_images_with_gpx_write_parquet_and_list_bad_rows(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "survey.parquet"
    text = validate(
        fixtures["images"], "--format", "images", "--gpx", fixtures["gpx"], "--out", out
    )
    assert "rows read │ 6" in text and "bad rows │ 2" in text
    assert "positioned from GPX │ 3" in text
    assert "b2.jpg: datetime is not a date-time (datetime: not a date)" in text
    assert "broken.jpg: unreadable image" in text
    assert "a3.jpg" not in text  # its 0/0 GPS was replaced by the track
    table = pd.read_parquet(out)
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS) and len(table) == 6
    assert str(table["datetime"].dtype) == "datetime64[ns, UTC]"


def test_drop_bad_and_issues_file(fixtures: dict[str, Path], tmp_path: Path) -> None:
    out, issues = tmp_path / "rov.csv", tmp_path / "issues.csv"
    text = validate(
        fixtures["rov"],
        "--depth-positive-up",
        "--timezone",
        "America/Los_Angeles",
        "--drop-bad",
        "--issues",
        issues,
        "--out",
        out,
    )
    assert "bad rows │ 3 (dropped)" in text and "rows written │ 3" in text
    assert "line 4: r3.jpg: latitude/longitude 0/0" in text
    assert "line 6: r4.jpg: duplicate (dataset, site, image) (image: first at line 5)" in text
    assert "line 7: r5.jpg: datetime is not a date-time (datetime: 13/45/2022 9:12:05)" in text
    assert pd.read_csv(out)["image"].tolist() == ["r1.jpg", "r2.jpg", "r4.jpg"]
    assert pd.read_csv(issues)["source_line"].tolist() == [4, 6, 7]


def test_csv_column_mapping(fixtures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mapped.parquet"
    validate(fixtures["rov"], "--map", "site=heading", "--dataset", "puget", "--out", out)
    table = pd.read_parquet(out)
    assert table["site"][0] == "263" and set(table["dataset"]) == {"puget"}


def test_coralnet_and_squidle_formats(fixtures: dict[str, Path], tmp_path: Path) -> None:
    text = validate(
        fixtures["coralnet"], "-f", "coralnet", "--site", "lagoon", "-o", tmp_path / "c.csv"
    )
    assert "rows read │ 3" in text and "line 4: IMG_2.JPG: latitude out of range" in text
    text = validate(fixtures["squidle_points"], "-f", "squidle", "-o", tmp_path / "s.parquet")
    assert "rows read │ 3" in text and "bad rows │ 0" in text


def test_strict_fails_with_one_red_line_and_writes_nothing(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "strict.parquet"
    text = validate(fixtures["rov"], "--strict", "--out", out, code=1)
    assert text.startswith("error:") and "rov.csv, line 4: image 'r3.jpg'" in text
    assert "(2 more bad row(s))" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.xlsx"], "unknown table format"),
        (
            ["--format", "images", "--column", "image=img_name", "--out", "x.csv"],
            "option columns applies to format csv only, not to images (see --column",
        ),
        (["--column", "image", "--out", "x.csv"], "--column takes"),
        (["--drop-bad", "--strict", "--out", "x.csv"], "contradict"),
        (["--gpx", "missing.gpx", "--out", "x.csv"], "GPX file not found"),
        (["--clock-offset", "soon", "--gpx", "TRACK", "--out", "x.csv"], "clock offset"),
    ],
)
def test_bad_options_are_one_line_errors(
    fixtures: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(fixtures["gpx"]) if a == "TRACK" else a for a in args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    text = validate(fixtures["rov"], *args, code=1)
    assert text.startswith("error:") and message in text
    assert list(tmp_path.iterdir()) == []


def test_keeps_the_previous_table_when_a_run_fails(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "t.parquet"
    validate(fixtures["rov"], "--out", out)
    before = out.read_bytes()
    validate(fixtures["rov"], "--strict", "--out", out, code=1)
    assert out.read_bytes() == before


@pytest.mark.shared_data
def test_real_inputs(shared_data: Path, tmp_path: Path) -> None:
    rov = validate(
        shared_data / "seattle-rov-patches" / "rov_images_2022.csv",
        "--depth-positive-up",
        "--timezone",
        "America/Los_Angeles",
        "--drop-bad",
        "--out",
        tmp_path / "rov.parquet",
    )
    assert "rows read │ 1,479" in rov and "bad rows │ 144 (dropped)" in rov
    assert "rows written │ 1,335" in rov
    (export,) = glob.glob(str(shared_data / "squidle-tasmania-kelp" / "annotations-*.csv"))
    squidle = validate(export, "--format", "squidle", "--out", tmp_path / "squidle.parquet")
    assert "rows read │ 300" in squidle and "bad rows │ 0" in squidle


def test_format_defaults_to_images_for_a_folder(fixtures: dict[str, Path], tmp_path: Path) -> None:
    text = validate(fixtures["images"] / "reef_a", "--out", tmp_path / "a.csv")
    assert "rows read │ 3" in text and "a3.jpg: latitude/longitude 0/0" in text
    text = validate(fixtures["images"], "--depth-positive-up", "--out", tmp_path / "b.csv", code=1)
    assert "option depth_positive_up applies to format csv only" in text
    assert "(see --depth-positive-up)" in text


def test_depth_log_and_gpx_together(fixtures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "both.parquet"
    text = validate(
        fixtures["images"] / "reef_a",
        "--depth-log",
        fixtures["depth_log"],
        "--gpx",
        fixtures["gpx"],
        "--timezone",
        "Etc/GMT+3",
        "--out",
        out,
    )
    assert "depth from log │ 2" in text and "positioned from GPX │ 3" in text
    table = pd.read_parquet(out).set_index("image")
    assert table.loc["a2.jpg", "depth"] == pytest.approx(8.5)
    assert table.loc["a1.jpg", "latitude"] == pytest.approx(-42.6240)


def test_dataset_commands_import_pandas_only_when_run() -> None:
    """``quadrat dataset --help`` must not pay for pandas, pyarrow or the readers."""
    import subprocess
    import sys

    code = (
        "import sys, quadrat.cli.dataset; "
        "heavy = {'pandas', 'pyarrow', 'sklearn', 'quadrat.datasets.readers'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
