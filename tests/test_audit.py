"""quadrat audit: confident learning, neighbour agreement, similar points and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import quadrat
from quadrat.classifiers.label_issues import (
    FeatureIndex,
    confident_learning,
    label_issues,
    neighbour_agreement,
)
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import NotFoundError, StateError, TrainingDataError

runner = CliRunner()


def separable(
    n: int = 600, classes: int = 5, dim: int = 12, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    return centres[y] + rng.normal(size=(n, dim)), y


def test_confident_learning_flags_the_odd_one() -> None:
    proba = np.array(
        [
            [0.9, 0.1],
            [0.8, 0.2],
            [0.7, 0.3],
            [0.1, 0.9],  # given 0, but clearly a 1
            [0.2, 0.8],
            [0.3, 0.7],
        ]
    )
    given = np.array([0, 0, 0, 0, 1, 1])
    cl = confident_learning(proba, given)
    assert cl.thresholds == pytest.approx([(0.9 + 0.8 + 0.7 + 0.1) / 4, (0.8 + 0.7) / 2])
    assert cl.flagged.tolist() == [False, False, False, True, False, False]
    assert cl.suggested[3] == 1 and cl.given_proba[3] == pytest.approx(0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_audit_finds_planted_flips(seed: int) -> None:
    X, y = separable(seed=seed)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), size=30, replace=False)  # 5 %
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 5, size=30)) % 5
    issues = label_issues(X, noisy, seed=seed)
    found = set(np.flatnonzero(issues.flagged).tolist())
    recall = len(found & set(flipped.tolist())) / len(flipped)
    precision = len(found & set(flipped.tolist())) / max(1, len(found))
    assert recall >= 0.8 and precision >= 0.8, (recall, precision)
    hits = issues.flagged[flipped]
    assert (issues.suggested[flipped][hits] == y[flipped][hits]).mean() >= 0.9
    assert issues.agreement[flipped].mean() < 0.3 < issues.agreement.mean()
    top = np.argsort(-issues.score)[:30]
    assert len(set(top.tolist()) & set(flipped.tolist())) >= 24


def test_clean_labels_are_not_flagged() -> None:
    X, y = separable(seed=3)
    assert label_issues(X, y).flagged.sum() <= 3


def test_too_few_labels() -> None:
    X, y = separable(n=8)
    with pytest.raises(TrainingDataError, match="at least 10 points"):
        label_issues(X, y)
    with pytest.raises(TrainingDataError, match="2 labels"):
        label_issues(X[:20] if len(X) >= 20 else np.ones((20, 3)), np.zeros(20, dtype=int))


def test_feature_index_neighbours() -> None:
    X = np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [5.0, 5.2]])
    index = FeatureIndex(X, ids=np.arange(100, 106))
    _d, rows = index.neighbours_of_rows(2)
    assert all(i not in row for i, row in enumerate(rows.tolist()))  # never itself
    assert neighbour_agreement(index, np.array([0, 0, 0, 1, 1, 0]), k=2).tolist() == [
        1.0, 1.0, 1.0, 0.5, 0.5, 0.0
    ]  # fmt: skip
    distances, ids = index.query([[5.0, 5.0]], 2)
    assert ids[0].tolist() == [103, 104] and distances[0][0] == pytest.approx(0.0)


# ----------------------------------------------------------------------------- a project


@pytest.fixture(scope="module")
def project_path(survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("audit") / "survey.db"
    with quadrat.Project.create(db) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
        src.extract("texture")
    return db


def test_source_audit(project_path: Path) -> None:
    with quadrat.Project.open(project_path) as project:
        src = project.source()
        every = src.audit(all_points=True)
        assert len(every) == src.counts()["imported"]
        assert every["score"].is_monotonic_decreasing
        assert every["given_proba"].between(0, 1).all() and every["agreement"].between(0, 1).all()
        flagged = src.audit()
        assert list(flagged.columns) == [
            "image", "point", "row", "column", "status", "given_label", "suggested_label",
            "given_proba", "agreement", "score", "point_id",
        ]  # fmt: skip
        assert set(flagged["point_id"]) == set(every[every["flagged"]]["point_id"])
        assert (flagged["given_label"] != flagged["suggested_label"]).all()


def test_similar_points(project_path: Path) -> None:
    with quadrat.Project.open(project_path) as project:
        src = project.source()
        point = int(src.annotations()["point_id"].iloc[0])
        near = src.similar_points(point, k=5)
        assert len(near) == 5 and point not in set(near["point_id"])
        assert near["distance"].is_monotonic_increasing
        with pytest.raises(NotFoundError) as info:
            src.similar_points(10**9)
        assert info.value.param == "point_id"


def test_audit_needs_features_and_labels(survey: DemoSurvey, tmp_path: Path) -> None:
    with quadrat.Project.create(tmp_path / "bare.db") as project:
        src = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_10")
        src.import_images([survey.new_dir])
        src.generate_points()
        src.extract("texture")
        with pytest.raises(TrainingDataError, match="no labelled points"):
            src.audit()
        other = project.create_source("lagoon", labelset=survey.labelset_csv)
        other.import_annotations(survey.annotations_csv, survey.annotated_dir)
        with pytest.raises(StateError, match="extract features first"):
            other.audit()


def test_cli_audit(project_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "-p", str(project_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert {"given_label", "suggested_label", "given_proba", "agreement", "score"} <= set(table)
    shown = runner.invoke(app, ["audit", "-p", str(project_path), "--all"], terminal_width=200)
    assert shown.exit_code == 0 and "demo_quadrat_" in shown.output
    alone = tmp_path / "alone.csv"
    cli_only = ["audit", "-p", str(project_path), "--max-agreement", "1.5", "-o", str(alone)]
    assert runner.invoke(app, cli_only).exit_code == 0
    assert set(table["point_id"]) <= set(pd.read_csv(alone)["point_id"])
    few = runner.invoke(app, ["audit", "-p", str(project_path), "--folds", "500"])
    assert few.exit_code == 1 and "cross-validation" in few.output
