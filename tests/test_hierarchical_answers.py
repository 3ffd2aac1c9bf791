"""Hierarchical answers in the workflow: classify and export (API and CLI), on the tiny survey."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import quadrat
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import UnknownLabelError
from quadrat.workflow import classify, exports

runner = CliRunner()
ANSWERS = ["Answer", "Answer level", "Answer confidence"]
THRESHOLD = ["--hierarchical-threshold", "0.6"]


@pytest.fixture(scope="module")
def project(survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The survey imported, new images pointed, texture features, an lr classifier."""
    db = tmp_path_factory.mktemp("answers") / "answers.db"
    with quadrat.Project.create(db) as handle:
        src = handle.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
        src.import_images([survey_template.new_dir])
        src.generate_points("m_10", seed=0)
        src.extract("texture")
        assert src.train(kind="lr", seed=0).accepted
    return db


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_classify_counts_answers_per_level(project: Path) -> None:
    with quadrat.Project.open(project) as handle:
        src = handle.source()
        plain = classify.classify(src)
        assert plain.answer_levels == {}
        summary = classify.classify(src, hierarchical_threshold=0.6)
        stored = src.annotations()
    assert summary.points == plain.points > 0
    assert sum(summary.answer_levels.values()) == summary.points
    assert set(summary.answer_levels) <= {"label", "group", "none"}
    assert next(iter(summary.answer_levels)) == "label"
    # the stored machine labels are the same with or without answers
    machine = stored[stored["status"] == "machine"]
    assert len(machine) == summary.machine


def test_answers_table_follows_the_rule(project: Path) -> None:
    with quadrat.Project.open(project) as handle:
        src = handle.source()
        classify.classify(src)
        zero = exports.answers(src, 0.0)
        sure = exports.answers(src, 0.6)
        groups = set(src.labelset()["functional_group"])
    assert (zero["answer_level"] == "label").all()  # threshold 0: a label, never a group
    assert (zero["answer_score"] <= zero["confidence"] + 1e-9).all()
    label = sure["answer_level"] == "label"
    assert (sure.loc[label, "answer"] == sure.loc[label, "suggestion"]).all()
    assert (sure.loc[label, "answer_score"] >= 0.6).all()
    group = sure["answer_level"] == "group"
    assert group.any() and label.any()  # the survey's Algae labels are confused at 0.6
    assert (sure.loc[group, "answer_score"] >= 0.6).all()
    assert (sure.loc[group, "confidence"] < 0.6).all()  # a parent only when the label is unsure
    assert sure.loc[group, "answer"].isin(groups).all()
    none = sure["answer_level"] == "none"
    assert (sure.loc[none, "answer"] == "").all()


def test_cli_classify_and_export_columns(project: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["classify", "-p", str(project), "--hierarchical-threshold", "0.6"])
    assert result.exit_code == 0, result.output
    # The table's header may wrap ("answered:" over "label") on a narrow console.
    assert "answered:" in result.output and "label" in result.output
    plain, answered = tmp_path / "plain.csv", tmp_path / "answered.csv"
    result = runner.invoke(app, ["export", "annotations", "-o", str(plain), "-p", str(project)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["export", "annotations", "-o", str(answered), "-p", str(project), *THRESHOLD],
    )
    assert result.exit_code == 0, result.output
    rows, extended = read(plain), read(answered)
    assert not set(ANSWERS) & set(rows[0])  # CoralNet's columns only without the option
    assert extended[0] == rows[0] + ANSWERS
    assert [r[: len(rows[0])] for r in extended] == rows  # CoralNet's part cell for cell
    header = rows[0]
    scored = [r for r in extended[1:] if r[header.index("Machine suggestion 1")]]
    assert scored and all(r[-2] in {"label", "group", "none"} for r in scored)
    for r in scored:
        if r[-2] == "label":
            assert r[-3] == r[header.index("Machine suggestion 1")]
            assert r[-1] == r[header.index("Machine confidence 1")]
    unscored = [r for r in extended[1:] if not r[header.index("Machine suggestion 1")]]
    assert unscored and all(r[-3:] == ["", "", ""] for r in unscored)
    with quadrat.Project.open(project) as handle:  # at 0 every node passes, yet no guess
        exports.export_annotations(handle.source(), answered, hierarchical_threshold=0.0)
    at_zero = read(answered)
    assert all(
        r[-3:] == ["", "", ""] for r in at_zero[1:] if not r[header.index("Machine suggestion 1")]
    )
    assert {r[-2] for r in at_zero[1:] if r[header.index("Machine suggestion 1")]} == {"label"}


def test_cli_option_errors(project: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    bad = runner.invoke(app, ["classify", "-p", str(project), "--hierarchical-threshold", "1.5"])
    assert bad.exit_code == 1 and "--hierarchical-threshold" in bad.output
    cover = runner.invoke(
        app, ["export", "cover", "-o", out, "-p", str(project), "--hierarchical-threshold", "0.6"]
    )
    assert cover.exit_code == 1 and "'export annotations'" in cover.output
    alone = runner.invoke(
        app, ["export", "annotations", "-o", out, "-p", str(project), "--hierarchy", out]
    )
    assert alone.exit_code == 1 and "needs --hierarchical-threshold" in alone.output
    tree = tmp_path / "tree.json"
    labels = [{"id": 1, "name": "Algae"}, {"id": 2, "name": "CCA", "parent_id": 1}]
    tree.write_text(json.dumps({"name": "partial", "labels": labels}), encoding="utf-8")
    missing = runner.invoke(
        app,
        [
            "export",
            "annotations",
            "-o",
            out,
            "-p",
            str(project),
            *THRESHOLD,
            "--hierarchy",
            str(tree),
        ],
    )
    assert missing.exit_code == 1, missing.output
    assert "has no place in the label tree" in missing.output and "--hierarchy" in missing.output
    assert not Path(out).exists()


def test_classify_with_a_tree_missing_a_label_changes_nothing(
    project: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree.json"
    labels = [{"id": 1, "name": "Algae"}, {"id": 2, "name": "CCA", "parent_id": 1}]
    tree.write_text(json.dumps({"name": "partial", "labels": labels}), encoding="utf-8")
    with quadrat.Project.open(project) as handle:
        src = handle.source()
        classify.classify(src)
        before = src.annotations()
        with pytest.raises(UnknownLabelError, match="has no place in the label tree"):
            classify.classify(src, threshold=0.0, hierarchical_threshold=0.6, hierarchy=tree)
        after = src.annotations()
    pd.testing.assert_frame_equal(before, after)  # checked before anything was stored
