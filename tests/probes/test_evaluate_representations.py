"""The evaluation script on a tiny subset of the real data (skips without ../shared/data)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate_representations.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_representations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared_data
@pytest.mark.slow
def test_evaluation_runs_on_a_tiny_real_subset(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load_script()
    code = script.main(
        [
            "--data", str(shared_data),
            "--work", str(tmp_path),
            "--extractors", "texture",
            "--seattle-per-class", "4",
            "--moorea-points", "8",
            "--moorea-images", "8",
            "--hier-epochs", "2",
            "--hier-hidden", "16",
            "--threads", "1",
        ]
    )  # fmt: skip
    assert code == 0
    table = json.loads(capsys.readouterr().out)
    assert table["data"]["seattle"] == {
        "n": 100, "classes": 25, "groups": 100, "majority": 0.04
    }  # fmt: skip
    assert table["data"]["moorea"]["n"] == 64 and table["data"]["moorea"]["groups"] == 8
    row = table["results"]["texture"]
    for split in ("seattle", "moorea"):
        assert 0.0 <= row[split]["accuracy"] <= 1.0 and row[split]["n"] > 0
    catami = row["seattle_catami"]
    assert catami["n_samples"] == table["catami"]["n"] > 0
    assert "substrate/depth_1" in catami["groups"]
    assert "SU_sand" in table["catami"]["mapping"] and "unknown" in table["catami"]["unmapped"]
    # Features were cached atomically: a rerun reads them back (the resume path).
    assert len(list((tmp_path / "features").glob("*.npy"))) == 2


@pytest.mark.shared_data
def test_moorea_subset_keeps_images_whole_and_skips_the_resized_copy(shared_data: Path) -> None:
    script = _load_script()
    data = script.load_moorea(shared_data, 5, 3, 0, lambda *_: None)
    assert data["patches"].shape == (15, 224, 224, 3)
    assert script.MOOREA_RESIZED not in set(data["groups"])
    folds = script.grouped_folds(data["labels"], data["groups"], 3, random_state=0)
    for train, test in folds:
        assert not set(data["groups"][train]) & set(data["groups"][test])
    assert np.unique(data["groups"]).size == 3


def test_bad_pretrained_flag_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load_script()
    code = script.main(["--data", str(tmp_path), "--pretrained", "nopath", "--extractors", ""])
    assert code == 1
    assert "NAME=PATH" in capsys.readouterr().err


def test_real_bn_control_samples_every_data_set_and_needs_a_network(tmp_path: Path) -> None:
    script = _load_script()
    rng = np.random.default_rng(0)
    datasets = {
        name: {"patches": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)}
        for name, n in (("a", 5), ("b", 40))
    }
    sample = script.real_patch_sample(datasets, 16, 0)
    assert sample.shape == (13, 8, 8, 3)  # 8 wanted of each, only 5 in "a"
    with pytest.raises(script.InputError, match="BatchNorm"):
        script.features_for("texture", None, datasets, tmp_path, 4, lambda *_: None, sample)
