"""The command line: the workflow through Typer, one-line errors, non-zero exits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.demo import DemoSurvey

runner = CliRunner()


def run(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def fail(*args: str, code: int | tuple[int, ...] = 1) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code in ((code,) if isinstance(code, int) else code), result.output
    assert "Traceback" not in result.output
    text = result.output.strip()
    assert text.startswith("error:"), text
    return " ".join(text.split())  # rich wraps long lines


def test_workflow(tmp_path: Path, survey: DemoSurvey) -> None:
    db = str(tmp_path / "s.db")
    run("init", "-p", db, "--source", "reef", "--labelset", str(survey.labelset_csv))
    out = run(
        "import", str(survey.annotations_csv), "--images", str(survey.annotated_dir), "-p", db
    )
    assert "imported 20 images, 240 points, 240 annotations" in out
    run("import", "--images", str(survey.new_dir), "-p", db)
    assert "generated 20 points" in run("points", "m_10", "-p", db)
    assert "260 points from 22 images" in run("extract", "-p", db)
    nothing = runner.invoke(app, ["extract", "-p", db])
    assert nothing.exit_code == 3 and "0 points from 0 images" in nothing.output
    assert "nothing to do" in run("extract", "--allow-nothing", "-p", db)
    out = run("train", "--kind", "lr", "-p", db)
    assert "accepted" in out and "macro F1" in out
    not_yet = runner.invoke(app, ["train", "--kind", "lr", "-p", db])  # policy: not yet
    assert not_yet.exit_code == 3 and "--force" in not_yet.output
    assert "20" in run("classify", "--threshold", "0.5", "-p", db)
    report_dir = tmp_path / "report"
    out = run("report", "--out", str(report_dir), "-p", db)
    assert "validation accuracy" in out
    assert (report_dir / "alleviate_curve.png").stat().st_size > 1000
    assert (report_dir / "confusion_matrix.png").stat().st_size > 1000
    for kind in ("annotations", "cover", "labelset"):
        run("export", kind, "-o", str(tmp_path / f"{kind}.csv"), "-p", db)
    assert "deprecated" in run("export", "cover", str(tmp_path / "old.csv"), "-p", db)
    assert (tmp_path / "old.csv").exists()
    rows = list(csv.DictReader((tmp_path / "annotations.csv").open()))
    assert len(rows) == 260 and "Machine suggestion 1" in rows[0]
    assert "texture" in run("extract", "--list")


def test_errors_are_one_line(tmp_path: Path, survey: DemoSurvey) -> None:
    db = str(tmp_path / "s.db")
    assert "no project here" in fail("extract", "-p", db, code=4)
    out = run("init", db, "--labelset", str(survey.labelset_csv))  # the old positional
    assert "deprecated" in out
    assert "already exists" in fail("init", "-p", db, code=5)
    missing = tmp_path / "nope.csv"
    assert "nope.csv" in fail(
        "import", str(missing), "--images", str(survey.annotated_dir), "-p", db, code=(1, 4)
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Column,Label\nx.jpg,1,Sand\n")
    assert "Row" in fail("import", str(bad), "--images", str(survey.annotated_dir), "-p", db)
    assert "m_x" in fail("points", "m_x", "-p", db)
    assert "no stored features" in fail("train", "-p", db)
    assert "--kind" in fail("train", "--kind", "svm", "-p", db)


@pytest.mark.slow
def test_demo(tmp_path: Path) -> None:
    args = ("--annotated-images", "20", "--new-images", "2")
    out = run("demo", "--out", str(tmp_path / "demo"), *args)
    assert "SYNTHETIC" in out
    assert "machine accuracy on the new images" in out
    assert (tmp_path / "demo" / "results" / "cover_export.csv").exists()
    # a second run replaces its own folder, but never a folder it did not make
    again = run("demo", "-o", str(tmp_path / "demo"), "--images", "20", "--new-images", "2")
    assert "deprecated" in again  # the old spelling still works, with a warning
    (tmp_path / "other").mkdir()
    assert "not a quadrat demo" in fail("demo", "--out", str(tmp_path / "other"))
