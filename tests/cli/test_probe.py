"""``quadrat probe`` on tiny generated patch tables and CoralNet annotation CSVs.

The texture extractor needs no weights, so the command runs end to end in seconds; the
hierarchical probe runs two epochs with small classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from quadrat.cli import app

runner = CliRunner()

CLASSES = {  # label -> (mean RGB, stripe period): the texture descriptor tells them apart
    "Biota > Macroalgae": ((40, 140, 60), 4),
    "Biota > Sponges": ((200, 160, 60), 16),
    "Physical > Substrate > Unconsolidated (soft)": ((150, 140, 120), 0),
}


def patch(rng: np.random.Generator, colour: tuple[int, int, int], period: int) -> np.ndarray:
    """A 64 px patch: a colour, noise, and vertical stripes of ``period`` pixels (0: none)."""
    base = np.array(colour, dtype=np.float64)[None, None, :] + rng.normal(0, 12, (64, 64, 3))
    if period:
        stripes = (np.arange(64) // (period // 2)) % 2 * 60.0
        base = base + stripes[None, :, None]
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture
def patch_table(tmp_path: Path) -> Path:
    """12 patches of each of three CATAMI-path labels, in a patch table of relative paths."""
    rng = np.random.default_rng(0)
    (tmp_path / "patches").mkdir()
    rows = []
    for k, (label, (colour, period)) in enumerate(CLASSES.items()):
        for i in range(12):
            name = f"patches/{k}_{i}.png"
            Image.fromarray(patch(rng, colour, period)).save(tmp_path / name)
            rows.append({"path": name, "label": label, "group": f"photo-{i % 6}"})
    path = tmp_path / "labelled.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["probe", *args])
    return result.exit_code, result.output


def test_probe_prints_and_writes_flat_and_catami_metrics(patch_table: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    code, output = run(str(patch_table), "--epochs", "2", "--folds", "3", "-o", str(out))
    assert code == 0, output
    assert "accuracy" in output and "CATAMI probe" in output
    assert "biota/depth_1" in output
    metrics = json.loads(out.read_text())
    assert metrics["extractor"].startswith("texture")
    assert metrics["samples"] == 36 and metrics["classes"] == 3 and metrics["folds"] == 3
    assert metrics["flat"]["n"] == 36
    assert metrics["flat"]["accuracy"] > 0.8  # three very different textures
    assert metrics["hierarchical"]["n_samples"] == 36
    assert "biota/depth_1" in metrics["hierarchical"]["groups"]
    assert metrics["catami"]["Biota > Sponges"] == "Biota > Sponges"
    assert metrics["unmapped"] == []


def test_flat_only_and_unmapped_labels(patch_table: Path, tmp_path: Path) -> None:
    table = pd.read_csv(patch_table)
    table["label"] = table["label"].map({label: f"class {k}" for k, label in enumerate(CLASSES)})
    renamed = patch_table.with_name("renamed.csv")
    table.to_csv(renamed, index=False)
    out = tmp_path / "flat.json"
    code, output = run(str(renamed), "--flat-only", "-o", str(out))
    assert code == 0, output
    metrics = json.loads(out.read_text())
    assert metrics["hierarchical"] is None
    assert metrics["hierarchical_note"] == "not asked for"
    code, output = run(str(renamed), "--epochs", "1")
    assert code == 0, output
    assert "fewer than two labels map" in output
    assert "3 label(s) not in CATAMI" in output


def test_coralnet_csv_with_photos_and_a_mapping(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = []
    for p in range(4):
        left = patch(rng, (40, 140, 60), 4)
        right = patch(rng, (200, 160, 60), 16)
        photo = np.concatenate([np.tile(left, (4, 2, 1)), np.tile(right, (4, 2, 1))], axis=1)
        Image.fromarray(photo).save(photos / f"img{p}.png")
        for i in range(6):
            rows.append({"Name": f"img{p}.png", "Row": 40 + 30 * i, "Column": 60, "Label": "ALG"})
            rows.append({"Name": f"img{p}.png", "Row": 40 + 30 * i, "Column": 190, "Label": "SP"})
    annotations = tmp_path / "annotations.csv"
    pd.DataFrame(rows).to_csv(annotations, index=False)
    mapping = tmp_path / "mapping.csv"
    pd.DataFrame({"source_label": ["ALG", "SP"], "caab_code": ["80300000", "10000000"]}).to_csv(
        mapping, index=False
    )
    out = tmp_path / "m.json"
    code, output = run(
        str(annotations), "-i", str(photos), "--mapping", str(mapping), "--epochs", "1",
        "--folds", "2", "-o", str(out),
    )  # fmt: skip
    assert code == 0, output
    metrics = json.loads(out.read_text())
    assert metrics["samples"] == 48 and metrics["folds"] == 2
    assert metrics["catami"] == {"ALG": "Biota > Macroalgae", "SP": "Biota > Sponges"}
    assert metrics["hierarchical"]["n_samples"] == 48


def test_bad_inputs_are_one_line(patch_table: Path, tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "absent.csv"))
    assert code == 4
    no_label = tmp_path / "no-label.csv"
    pd.read_csv(patch_table).drop(columns="label").to_csv(no_label, index=False)
    code, output = run(str(no_label))
    assert code == 1
    assert "label" in output and "Traceback" not in output
    code, output = run(str(patch_table), "-e", "efficientnet_b0")
    assert code == 1
    assert "--weights" in output
