"""quadrat.probes.run: the probes on given features, the CATAMI label look-up, table reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from quadrat.errors import InputError, PointOutsideImageError, UnknownNodeError
from quadrat.probes.run import catami_codes, read_labelled_patches, run_probes

LABELS = ["Biota > Macroalgae", "Biota > Sponges", "Physical > Substrate > Unconsolidated (soft)"]


def separable(n_per_class: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features with one well separated cluster per label."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(4.0 * k, 0.5, (n_per_class, 6)) for k in range(len(LABELS))])
    y = np.repeat(LABELS, n_per_class)
    return x.astype(np.float32), y


def test_flat_probe_on_separable_features_and_shuffled_labels() -> None:
    x, y = separable()
    good = run_probes(x, y, hierarchical=False, folds=3)
    assert good.flat["accuracy"] == 1.0 and good.flat["n"] == 30
    assert good.hierarchical is None and good.hierarchical_note == "not asked for"
    shuffled = np.random.default_rng(1).permutation(y)
    worse = run_probes(x, shuffled, hierarchical=False, folds=3)
    assert worse.flat["accuracy"] < 0.8


def test_hierarchical_probe_runs_on_mapped_labels_only() -> None:
    x, y = separable()
    y = y.astype(object)
    y[:5] = "not a CATAMI label"
    results = run_probes(x, y, folds=3, probe_options={"epochs": 2, "hidden": 16})
    assert results.unmapped == ["not a CATAMI label"]
    assert results.hierarchical is not None
    assert results.hierarchical["n_samples"] == 25
    assert results.catami["Biota > Sponges"] == "Biota > Sponges"
    as_json = results.to_dict()
    assert as_json["hierarchical"]["nodes"] == results.hierarchical["nodes"]


def test_catami_codes_from_a_mapping_and_without() -> None:
    codes, unmapped = catami_codes(["ALG", "SP", "x"], {"ALG": "80300000", "SP": "10000000"})
    assert codes == {"ALG": "80300000", "SP": "10000000"} and unmapped == ["x"]
    codes, unmapped = catami_codes(["Biota > Macroalgae", "10000000", "zzz"])
    assert codes == {"10000000": "10000000", "Biota > Macroalgae": "80300000"}
    assert unmapped == ["zzz"]
    with pytest.raises(UnknownNodeError):
        catami_codes(["ALG"], {"ALG": "99999999"})


def test_features_and_labels_must_fit() -> None:
    x, y = separable()
    with pytest.raises(InputError):
        run_probes(x[:-1], y)


def test_a_point_outside_its_photo_names_the_file_and_line(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "a.png")
    pd.DataFrame(
        {"Name": ["a.png", "a.png"], "Row": [10, 400], "Column": [10, 10], "Label": ["A", "B"]}
    ).to_csv(tmp_path / "ann.csv", index=False)
    data = read_labelled_patches(tmp_path / "ann.csv", image_dir=tmp_path)
    assert data.groups.tolist() == ["a.png", "a.png"]
    with pytest.raises(PointOutsideImageError) as caught:
        list(data.batches(8))
    assert caught.value.path == tmp_path / "a.png"
    assert caught.value.line == 3


def test_a_missing_patch_file_fails_before_any_feature(tmp_path: Path) -> None:
    pd.DataFrame({"path": ["absent.png"], "label": ["A"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match="not found"):
        read_labelled_patches(tmp_path / "t.csv")
