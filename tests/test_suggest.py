"""quadrat suggest: acquisition scores, diverse batches, Source.suggest and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import quadrat
from quadrat.classifiers.acquisition import (
    acquisition_scores,
    entropy,
    k_center_greedy,
    margin,
    select_batch,
)
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import InputError, StateError

runner = CliRunner()


# ----------------------------------------------------------------------------- pure functions


def test_margin_ranks_known_cases() -> None:
    proba = np.array(
        [
            [0.90, 0.05, 0.05],  # sure
            [0.50, 0.45, 0.05],  # torn between two
            [0.60, 0.30, 0.10],  # in between
            [0.34, 0.33, 0.33],  # torn between three
        ]
    )
    assert margin(proba) == pytest.approx([0.85, 0.05, 0.30, 0.01])
    order = np.argsort(-acquisition_scores(proba, "margin"))
    assert order.tolist() == [3, 1, 2, 0]
    ent = entropy(proba)
    assert ent[3] == pytest.approx(1.0, abs=1e-3) and ent.argmin() == 0
    assert entropy(np.array([[1.0, 0.0]])) == pytest.approx([0.0])


def test_random_scores_are_reproducible_and_strategy_checked() -> None:
    first = acquisition_scores(None, "random", n=10, seed=3)
    assert np.array_equal(first, acquisition_scores(None, "random", n=10, seed=3))
    assert not np.array_equal(first, acquisition_scores(None, "random", n=10, seed=4))
    with pytest.raises(InputError) as info:
        acquisition_scores(np.ones((2, 2)) / 2, "least-sure")
    assert info.value.param == "strategy"


def test_diversity_avoids_duplicates() -> None:
    rng = np.random.default_rng(0)
    duplicate = rng.normal(size=8)
    features = np.vstack([np.tile(duplicate, (10, 1)), rng.normal(size=(10, 8)) * 3])
    scores = np.r_[np.full(10, 0.9), np.linspace(0.8, 0.7, 10)]  # the copies are most unsure
    plain = select_batch(scores, 4, features=features, diversity=False)
    assert set(plain.tolist()) <= set(range(10))  # four copies of one patch
    diverse = select_batch(scores, 4, features=features, diversity=True)
    assert len(set(diverse.tolist()) & set(range(10))) == 1  # one copy, three others
    assert diverse[0] < 10  # the most uncertain still comes first
    assert len(set(diverse.tolist())) == 4


def test_k_center_greedy_covers_clusters() -> None:
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [50, 0], [0, 50], [50, 50]], dtype=float)
    points = np.vstack([c + rng.normal(size=(25, 2)) for c in centres])
    picked = k_center_greedy(points, 4)
    assert sorted((picked // 25).tolist()) == [0, 1, 2, 3]


def test_select_batch_checks_n() -> None:
    with pytest.raises(InputError) as info:
        select_batch(np.ones(3), 0)
    assert info.value.param == "n"


# ----------------------------------------------------------------------------- a project


def _project(root: Path, survey: DemoSurvey, *, train: bool) -> Path:
    db = root / ("trained.db" if train else "untrained.db")
    with quadrat.Project.create(db) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_10")
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.import_images([survey.new_dir])
        src.generate_points(seed=0)
        if train:
            src.extract("texture")
            assert src.train(kind="lr", seed=0).accepted
    return db


@pytest.fixture(scope="module")
def trained(survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("suggest"), survey_template, train=True)


@pytest.fixture(scope="module")
def untrained(survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("suggest"), survey_template, train=False)


def test_suggest_ranks_unconfirmed_points(trained: Path) -> None:
    with quadrat.Project.open(trained) as project:
        src = project.source()
        labelled = set(src.annotations().query("status in ['imported', 'confirmed']")["point_id"])
        frame = src.suggest(5, diversity=False)
        assert list(frame["rank"]) == [1, 2, 3, 4, 5]
        assert not set(frame["point_id"]) & labelled
        assert frame["margin"].is_monotonic_increasing  # least sure first
        assert (frame["score"] == 1 - frame["margin"]).all()
        assert frame["top_label"].notna().all()
        diverse = src.suggest(5)
        assert len(diverse) == 5 and diverse["point_id"].is_unique
        assert diverse["score"].is_monotonic_decreasing
        entropy_first = src.suggest(3, strategy="entropy", diversity=False)
        assert entropy_first["entropy"].is_monotonic_decreasing
        images = src.suggest(2, by="images")
        assert list(images.columns) == [
            "rank", "image", "points", "margin", "entropy", "score", "image_id"
        ]  # fmt: skip
        assert len(images) == 2 and images["score"].is_monotonic_decreasing
        everything = src.suggest(10_000, diversity=False)
        assert len(everything) == src.counts()["points"] - len(labelled)


def test_random_needs_no_classifier(untrained: Path) -> None:
    with quadrat.Project.open(untrained) as project:
        src = project.source()
        frame = src.suggest(4, strategy="random", seed=1)
        assert len(frame) == 4 and frame["margin"].isna().all()
        assert frame.equals(src.suggest(4, strategy="random", seed=1))
        with pytest.raises(StateError, match="train one first"):
            src.suggest(4, strategy="margin")
        with pytest.raises(InputError) as info:
            src.suggest(0)
        assert info.value.param == "n"
        with pytest.raises(InputError) as info:
            src.suggest(3, by="sites")  # type: ignore[arg-type]
        assert info.value.param == "by"


def test_cli_suggest(trained: Path, untrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "next.csv"
    result = runner.invoke(app, ["suggest", "-p", str(trained), "-n", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 3 and {"image", "point", "row", "column", "top_label"} <= set(table)
    shown = runner.invoke(
        app, ["suggest", "-p", str(trained), "-n", "2", "--by", "images"], terminal_width=200
    )
    assert shown.exit_code == 0 and "demo_quadrat_" in shown.output
    refused = runner.invoke(app, ["suggest", "-p", str(untrained), "--strategy", "entropy"])
    assert refused.exit_code == 1 and "train one first" in refused.output


def test_nothing_left_to_suggest(survey_template: DemoSurvey, tmp_path: Path) -> None:
    db = tmp_path / "done.db"
    with quadrat.Project.create(db) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
        assert src.suggest(5, strategy="random").empty
    result = runner.invoke(app, ["suggest", "-p", str(db), "--strategy", "random"])
    assert result.exit_code == 3 and "every point has a person's label" in result.output
    allowed = runner.invoke(
        app, ["suggest", "-p", str(db), "--strategy", "random", "--allow-nothing"]
    )
    assert allowed.exit_code == 0
