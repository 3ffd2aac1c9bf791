"""Report figures are valid, non-trivial PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from quadrat.classifiers.metrics import alleviate_curve
from quadrat.errors import InputError
from quadrat.reports.plots import plot_alleviate_curve, plot_confusion_matrix, plot_cover

PNG = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 5_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 300 and image.height > 200
        # not a blank canvas: many distinct colours
        assert len(np.unique(np.asarray(image.convert("L")))) > 10
    leftovers = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.fixture
def curve() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4) * 0.4, size=300)
    y = np.where(rng.random(300) < 0.8, proba.argmax(axis=1), 0)
    return alleviate_curve(proba, y, np.arange(4))


def test_alleviate_curve_png(tmp_path, curve):
    path = plot_alleviate_curve(curve, tmp_path / "sub" / "curve.png", chosen_threshold=0.7)
    _check_png(path)


def test_alleviate_curve_overwrites_atomically(tmp_path, curve):
    path = tmp_path / "curve.png"
    path.write_bytes(b"old")
    plot_alleviate_curve(curve, path)
    _check_png(path)


def test_alleviate_curve_needs_columns(tmp_path):
    with pytest.raises(InputError, match="lacks columns"):
        plot_alleviate_curve(pd.DataFrame({"threshold": [0.0]}), tmp_path / "x.png")


def test_confusion_matrix_png(tmp_path):
    conf = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])  # an empty row must not divide by 0
    _check_png(plot_confusion_matrix(conf, ["CCA", "Sand", "Turf"], tmp_path / "conf.png"))


def test_confusion_matrix_shape_mismatch(tmp_path):
    with pytest.raises(InputError):
        plot_confusion_matrix(np.ones((2, 2)), ["a", "b", "c"], tmp_path / "c.png")


def test_cover_per_image_wide_long_and_overall(tmp_path):
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(
        rng.integers(0, 20, size=(8, 15)),
        index=[f"img{i}" for i in range(8)],
        columns=[f"L{i}" for i in range(15)],
    )
    _check_png(plot_cover(wide, tmp_path / "wide.png"))
    long = wide.stack().rename("count").reset_index()
    long.columns = ["image", "label", "count"]
    _check_png(plot_cover(long, tmp_path / "long.png"))
    _check_png(plot_cover(wide.sum(), tmp_path / "overall.png"))
    overall_long = pd.DataFrame({"label": ["CCA", "Sand", "Turf"], "cover": [0.5, 0.3, 0.2]})
    _check_png(plot_cover(overall_long, tmp_path / "overall_long.png"))


def test_cover_rejects_negative(tmp_path):
    with pytest.raises(InputError):
        plot_cover(pd.Series({"a": -1.0, "b": 2.0}), tmp_path / "bad.png")
