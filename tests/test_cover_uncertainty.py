"""Cover with confidence intervals and corrected for the classifier's confusions (issue 15).

Generated data with a known truth: the two-stage bootstrap's intervals contain the true
cover at about their nominal rate (fixed seeds, a loose bound: never flaky), the
adjusted counts recover a known cover from a known confusion matrix, degenerate inputs
get clear answers or errors; then the same through ``Source.cover`` and
``quadrat export cover --intervals`` on the synthetic survey.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quadrat.errors import InputError, StateError
from quadrat.reports.cover_uncertainty import cover_intervals, wide_cover
from quadrat.reports.quantify import Validation, simplex_lstsq

LABELS = ["A", "B", "C"]
#: P(predicted j | true i): the classifier mistakes a fifth of C for A.
RATES = np.array([[0.85, 0.10, 0.05], [0.05, 0.90, 0.05], [0.20, 0.05, 0.75]])


def _sites(
    rng: np.random.Generator,
    *,
    sites: int = 4,
    images: int = 12,
    points: int = 50,
    machine: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Points of ``sites`` sites; each site's images draw their cover from a Dirichlet
    around the site's true mean cover (returned, shape (sites, 3)); machine points carry
    labels drawn through :data:`RATES`."""
    truth = rng.dirichlet([4.0, 3.0, 3.0], size=sites)
    rows = []
    for s in range(sites):
        for i in range(images):
            cover = rng.dirichlet(truth[s] * 20.0)
            true = rng.choice(3, size=points, p=cover)
            shown = np.array([rng.choice(3, p=RATES[t]) for t in true]) if machine else true
            rows += [(f"s{s}-i{i}", f"s{s}", LABELS[x], not machine) for x in shown]
    frame = pd.DataFrame(rows, columns=["image", "site", "label", "known"])
    return frame, truth


def _validation(rng: np.random.Generator, per_label: int = 400) -> Validation:
    counts = np.stack([rng.multinomial(per_label, row) for row in RATES]).astype(float)
    return Validation(tuple(LABELS), counts, mean_scores=_scores(counts / per_label))


def _scores(one_hot: np.ndarray) -> np.ndarray:
    """Scores of a classifier that puts 0.8 on its label and spreads the rest evenly."""
    return 0.8 * one_hot + 0.2 / 3


def _coverage(frame: pd.DataFrame, truth: np.ndarray) -> np.ndarray:
    true = truth.ravel() * 100.0  # groups s0.. in order, labels A, B, C
    return (frame["lower"].to_numpy() <= true) & (true <= frame["upper"].to_numpy())


def test_intervals_cover_the_site_mean_at_about_the_nominal_rate() -> None:
    hits = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        points, truth = _sites(rng)
        frame = cover_intervals(points, LABELS, group="site", replicates=400, seed=seed)
        hits.append(_coverage(frame, truth))
    rate = float(np.mean(np.concatenate(hits)))
    # 144 intervals at 95 %: a percentile bootstrap on 12 images runs a little short.
    assert 0.80 <= rate <= 1.0, rate


def test_point_only_intervals_would_be_too_narrow() -> None:
    """The first stage matters: with images resampled the intervals are wider than the
    spread of points alone (one group per image, pooled by hand)."""
    rng = np.random.default_rng(3)
    points, _ = _sites(rng, sites=1)
    site = cover_intervals(points, LABELS, group="site", replicates=400)
    images = cover_intervals(points, LABELS, group="image", replicates=400)
    pooled_width = (
        np.sqrt(((images["upper"] - images["lower"]) ** 2).groupby(images["label"]).sum())
        / points["image"].nunique()
    )
    width = (site["upper"] - site["lower"]).set_axis(site["label"])
    assert (width > pooled_width.reindex(width.index)).all()


def test_correction_recovers_a_known_cover_from_a_known_confusion_matrix() -> None:
    truth = np.array([0.5, 0.3, 0.2])
    observed = RATES.T @ truth
    np.testing.assert_allclose(simplex_lstsq(RATES, observed[None]), truth[None], atol=1e-5)
    # Through the cover table: 1000 machine points whose labels are exactly as expected.
    shown = np.repeat(LABELS, np.round(observed * 1000).astype(int))
    points = pd.DataFrame({"image": "q", "label": shown, "known": False})
    validation = Validation(tuple(LABELS), RATES * 1000, mean_scores=RATES)
    for method in ("acc", "pacc"):
        scores = np.eye(3)[pd.Index(LABELS).get_indexer(shown)]  # one-hot: q as for ACC
        frame = cover_intervals(
            points, LABELS, method=method, validation=validation, scores=scores, intervals=False
        )
        np.testing.assert_allclose(frame["estimate"], truth * 100, atol=0.01)
        np.testing.assert_allclose(frame["cover"], observed * 100, atol=0.05)  # naive
        assert frame["lower"].isna().all()


def test_constrained_solution_is_on_the_simplex() -> None:
    """Observed shares no true cover could produce: the answer is the closest on the
    simplex (non-negative, summing to one), not an inverted matrix's negative share."""
    observed = np.array([[0.0, 0.0, 1.0], [0.95, 0.05, 0.0]])
    inverted = np.linalg.solve(RATES.T, observed.T).T
    assert (inverted < 0).any()
    solved = simplex_lstsq(RATES, observed)
    assert (solved >= 0).all()
    np.testing.assert_allclose(solved.sum(axis=1), 1.0)
    assert (solved[0] == [0.0, 0.0, 1.0]).all()


def test_corrected_intervals_cover_the_truth_and_naive_ones_do_not() -> None:
    hits: dict[str, list[np.ndarray]] = {"naive": [], "acc": [], "pacc": []}
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        points, truth = _sites(rng, sites=3, machine=True)
        validation = _validation(rng)
        scores = _scores(np.eye(3)[pd.Index(LABELS).get_indexer(points["label"])])
        for method in hits:
            frame = cover_intervals(
                points,
                LABELS,
                group="site",
                method=method,
                validation=validation,
                scores=scores,
                replicates=300,
                seed=seed,
            )
            hits[method].append(_coverage(frame, truth))
    rate = {m: float(np.mean(np.concatenate(h))) for m, h in hits.items()}
    assert rate["acc"] >= 0.8 and rate["pacc"] >= 0.8, rate
    assert rate["naive"] < min(rate["acc"], rate["pacc"]) - 0.1, rate


def test_degenerate_inputs() -> None:
    one_image = pd.DataFrame({"image": "x", "site": "s", "label": ["A", "B"] * 10, "known": True})
    frame = cover_intervals(one_image, LABELS, group="site", replicates=200)
    assert (frame["images"] == 1).all()
    assert frame.set_index("label").loc["C", ["estimate", "lower", "upper"]].tolist() == [0, 0, 0]
    assert (
        frame.set_index("label").loc["A", "lower"] < 50 < frame.set_index("label").loc["A", "upper"]
    )

    one_label = pd.DataFrame({"image": ["x", "y"] * 5, "label": "B", "known": True})
    frame = cover_intervals(one_label, ["B"], replicates=50).drop_duplicates("label")
    assert frame[["estimate", "lower", "upper"]].iloc[0].tolist() == [100.0, 100.0, 100.0]

    # No machine point: a correction has nothing to correct and needs no classifier.
    known = pd.DataFrame({"image": "x", "label": ["A", "C"], "known": True})
    for method in ("acc", "pacc"):
        frame = cover_intervals(known, LABELS, method=method, replicates=20)
        assert frame["estimate"].tolist() == [50.0, 0.0, 50.0]

    machine = known.assign(known=False)
    with pytest.raises(StateError, match="validation confusions"):
        cover_intervals(machine, LABELS, method="acc")
    with pytest.raises(InputError) as info:
        cover_intervals(known, LABELS, confidence=1.0)
    assert info.value.param == "confidence"
    with pytest.raises(InputError) as info:
        cover_intervals(known, LABELS, replicates=0)
    assert info.value.param == "replicates"
    with pytest.raises(InputError) as info:
        cover_intervals(known, LABELS, method="bogus")
    assert info.value.param == "corrected"
    with pytest.raises(InputError, match="not among the cover labels"):
        cover_intervals(known, ["A"])
    empty = cover_intervals(known.iloc[:0], LABELS)
    assert empty.empty


def test_singular_confusion_matrix_gives_a_defined_answer_and_says_so() -> None:
    """B and C are always predicted as B: the classifier cannot tell them apart."""
    confusion = np.array([[90.0, 10.0, 0.0], [5.0, 95.0, 0.0], [5.0, 95.0, 0.0]])
    validation = Validation(tuple(LABELS), confusion)
    points = pd.DataFrame({"image": "x", "label": ["A"] * 30 + ["B"] * 70, "known": False})
    frame = cover_intervals(points, LABELS, method="acc", validation=validation, replicates=100)
    assert frame.attrs["indistinguishable"] == [("B", "C")]
    assert np.isfinite(frame[["estimate", "lower", "upper"]].to_numpy()).all()
    assert frame["estimate"].sum() == pytest.approx(100.0)
    # The split of B and C follows the machine labels (the answer nearest the observed:
    # the correction's change is shared between them, none of the machine's B goes to C).
    by_label = frame.set_index("label")["estimate"]
    assert by_label["C"] < 1.0 < 60.0 < by_label["B"]


def test_labels_without_validation_points_pass_unchanged() -> None:
    confusion = np.array([[80.0, 20.0, 0.0], [10.0, 90.0, 0.0], [0.0, 0.0, 0.0]])
    validation = Validation(tuple(LABELS), confusion)
    np.testing.assert_allclose(validation.rates()[2], [0.0, 0.0, 1.0])
    points = pd.DataFrame({"image": "x", "label": ["C"] * 10, "known": False})
    frame = cover_intervals(points, LABELS, method="acc", validation=validation, intervals=False)
    assert frame["estimate"].tolist() == pytest.approx([0.0, 0.0, 100.0])
    # One validation point of C, mistaken for A: too few to say anything (min_support).
    confusion[2] = [1.0, 0.0, 0.0]
    few = Validation(tuple(LABELS), confusion)
    np.testing.assert_allclose(few.rates()[2], [0.0, 0.0, 1.0])
    trusting = Validation(tuple(LABELS), confusion, min_support=1)
    np.testing.assert_allclose(trusting.rates()[2], [1.0, 0.0, 0.0])


def test_wide_table_orders_naive_then_estimate_and_bounds() -> None:
    points = pd.DataFrame({"image": ["x", "y"], "label": ["A", "B"], "known": True})
    wide = wide_cover(cover_intervals(points, ["A", "B"], replicates=10))
    assert list(wide.columns) == [
        "A",
        "B",
        "A estimate",
        "A lower",
        "A upper",
        "B estimate",
        "B lower",
        "B upper",
    ]


# ------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def classified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic survey with a site column (Aux1), a classifier and machine labels."""
    import quadrat
    from tests.data.survey.data import make_survey

    root = tmp_path_factory.mktemp("cover")
    survey = make_survey(root / "survey", n_new=4)
    table = pd.read_csv(survey.annotations_csv, dtype=str)
    names = sorted(table["Name"].unique())
    table.insert(2, "Aux1", table["Name"].map(lambda n: "north" if n in names[:10] else "south"))
    table.to_csv(survey.annotations_csv, index=False)
    project = quadrat.Project.create(root / "cover.db")
    src = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_10")
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    src.import_images([survey.new_dir])
    src.generate_points(seed=0)
    src.extract("texture")
    outcome = src.train(kind="lr", seed=0)
    scores = outcome.metrics["validation_scores"]
    assert len(scores["mean_scores"]) == len(scores["labels"]) == len(outcome.metrics["labels"])
    src.classify()
    project.close()
    return root / "cover.db"


def test_source_cover_levels_and_corrections(classified: Path) -> None:
    import quadrat

    with quadrat.Project.open(classified) as project:
        src = project.source()
        plain = src.cover()
        labels = list(plain.columns[4:])
        per_image = src.cover(True, replicates=200)
        assert list(per_image.columns[: 4 + len(labels)]) == list(plain.columns)
        pd.testing.assert_frame_equal(per_image[plain.columns], plain, check_dtype=False)
        for label in labels:
            assert (per_image[f"{label} lower"] <= per_image[f"{label} estimate"] + 1e-9).all()
            assert (per_image[f"{label} estimate"] <= per_image[f"{label} upper"] + 1e-9).all()
        sites = src.cover(True, level="site:Aux1", corrected="pacc", replicates=200)
        assert sites["Aux1"].tolist() == ["", "north", "south"]  # new images have no site
        assert sites["Images"].tolist() == [4, 10, 10]
        assert (sites["Method"] == "pacc").all()
        whole = src.cover(level="source", corrected="acc")
        assert whole["Images"].tolist() == [24]
        assert f"{labels[0]} lower" not in whole.columns
        estimates = whole[[f"{label} estimate" for label in labels]].to_numpy()
        assert estimates.sum() == pytest.approx(100.0)
        with pytest.raises(InputError) as info:
            src.cover(True, level="site:Depth")
        assert info.value.param == "level" and "Aux1" in str(info.value)


def test_cli_export_cover_columns(classified: Path, tmp_path: Path) -> None:
    from quadrat.cli import app

    runner = CliRunner()
    plain, extended = tmp_path / "plain.csv", tmp_path / "intervals.csv"
    result = runner.invoke(app, ["export", "cover", "-o", str(plain), "-p", str(classified)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            *("export", "cover", "-o", str(extended), "--intervals", "--corrected", "acc"),
            *("--replicates", "100", "-p", str(classified)),
        ],
    )
    assert result.exit_code == 0, result.output
    with plain.open() as fh:
        plain_rows = list(csv.reader(fh))
    with extended.open() as fh:
        rows = list(csv.reader(fh))
    header = plain_rows[0]
    labels = header[4:]
    assert header[:4] == ["Image ID", "Image name", "Annotation status", "Points"]
    assert rows[0][: len(header)] == header
    added = [f"{label} {part}" for label in labels for part in ("estimate", "lower", "upper")]
    assert rows[0][len(header) :] == [*added, "Method", "Confidence", "Replicates"]
    assert [r[: len(header)] for r in rows] == plain_rows  # CoralNet's cells unchanged
    assert rows[-1][0] == "ALL IMAGES" and rows[-1][-3:] == ["acc", "0.95", "100"]
    site = runner.invoke(
        app,
        [
            *("export", "cover", "-o", str(tmp_path / "s.csv"), "--level", "site:Aux1"),
            *("--intervals", "--replicates", "50", "-p", str(classified)),
        ],
    )
    assert site.exit_code == 0, site.output
    assert (tmp_path / "s.csv").read_text().splitlines()[0].startswith("Aux1,Images,Points,")
    bad = runner.invoke(
        app,
        [
            *("export", "cover", "-o", str(tmp_path / "b.csv"), "--confidence", "2"),
            *("--intervals", "-p", str(classified)),
        ],
    )
    assert bad.exit_code == 1 and "--confidence" in bad.output


def test_report_draws_error_bars(classified: Path, tmp_path: Path) -> None:
    import quadrat

    with quadrat.Project.open(classified) as project:
        report = project.source().report(tmp_path / "report")
    bounds = report.cover_intervals
    assert bounds is not None
    assert (bounds["lower"] <= bounds["estimate"] + 1e-9).all()
    assert (bounds["estimate"] <= bounds["upper"] + 1e-9).all()
    assert bounds["estimate"].sum() == pytest.approx(100.0)
    assert tmp_path / "report" / "cover_intervals.png" in report.files
    assert (tmp_path / "report" / "cover_intervals.png").stat().st_size > 1000
