"""A small synthetic reef survey, so the whole workflow runs on a fresh machine.

The images are made up (Voronoi patches of five procedural textures) and say so: they
exist to exercise every step (CoralNet CSV import, points, extraction, training,
classification, alleviation, export) with no data or weights to download, and their
hidden ground truth lets the demo report an honest accuracy on images it never trained on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

#: (short code, name, functional group, base RGB, blob scale in px, contrast)
DEMO_LABELS: tuple[tuple[str, str, str, tuple[int, int, int], float, float], ...] = (
    ("Sand", "Sand", "Soft Substrate", (214, 200, 160), 1.0, 12.0),
    ("CCA", "CCA (crustose coralline algae)", "Algae", (196, 120, 150), 6.0, 25.0),
    ("Porit", "Porites", "Hard coral", (170, 140, 80), 3.0, 45.0),
    ("Turf", "Turf algae", "Algae", (110, 110, 70), 1.5, 35.0),
    ("Macro", "Macroalgae", "Algae", (50, 90, 40), 10.0, 40.0),
)


@dataclass(frozen=True)
class DemoSurvey:
    root: Path
    labelset_csv: Path
    annotations_csv: Path
    annotated_dir: Path
    new_dir: Path
    #: Ground truth of the new images: name -> label map (H, W) of indices into DEMO_LABELS.
    truth: dict[str, np.ndarray]


def _texture(rng: np.random.Generator, shape: tuple[int, int], label: int) -> np.ndarray:
    _, _, _, rgb, scale, contrast = DEMO_LABELS[label]
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), scale)
    noise /= noise.std() + 1e-9
    shade = noise[..., None] * contrast * np.array([1.0, 0.9, 0.8])
    if label == 3:  # turf: fine vertical striation
        shade += 15 * np.sin(np.arange(shape[1]) / 2.0)[None, :, None]
    return np.asarray(rgb, dtype=np.float64) + shade


def _make_image(
    rng: np.random.Generator, height: int, width: int, n_regions: int
) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.uniform([0, 0], [height, width], size=(n_regions, 2))
    classes = rng.choice(len(DEMO_LABELS), size=n_regions, p=[0.3, 0.2, 0.25, 0.15, 0.1])
    rr, cc = np.mgrid[0:height, 0:width]
    d = (rr[..., None] - centres[:, 0]) ** 2 + (cc[..., None] - centres[:, 1]) ** 2
    label_map = classes[np.argmin(d, axis=-1)]
    pixels = np.zeros((height, width, 3))
    for label in np.unique(label_map):
        mask = label_map == label
        pixels[mask] = _texture(rng, (height, width), int(label))[mask]
    lighting = 0.85 + 0.3 * rng.random()  # images differ in exposure, as real ones do
    return np.clip(pixels * lighting, 0, 255).astype(np.uint8), label_map


def make_demo_survey(
    root: Path,
    *,
    n_annotated: int = 24,
    n_new: int = 6,
    points_per_image: int = 30,
    size: tuple[int, int] = (480, 640),
    seed: int = 0,
) -> DemoSurvey:
    """Write a synthetic survey: a CoralNet labelset and annotation CSV, and JPEGs."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    annotated_dir, new_dir = root / "images", root / "new-images"
    annotated_dir.mkdir(exist_ok=True)
    new_dir.mkdir(exist_ok=True)
    labelset_csv = root / "labelset.csv"
    with labelset_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Label ID", "Name", "Short Code", "Functional Group"])
        for i, (code, name, group, *_rest) in enumerate(DEMO_LABELS, start=1):
            writer.writerow([9000 + i, name, code, group])
    height, width = size
    annotations_csv = root / "annotations.csv"
    truth: dict[str, np.ndarray] = {}
    with annotations_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Date", "Row", "Column", "Label", "Annotator"])
        for i in range(n_annotated + n_new):
            pixels, label_map = _make_image(rng, height, width, n_regions=12)
            name = f"demo_quadrat_{i + 1:03d}.jpg"
            folder = annotated_dir if i < n_annotated else new_dir
            Image.fromarray(pixels).save(folder / name, quality=90)
            if i >= n_annotated:
                truth[name] = label_map
                continue
            rows = rng.integers(0, height, points_per_image)
            cols = rng.integers(0, width, points_per_image)
            for r, c in zip(rows, cols, strict=True):
                code = DEMO_LABELS[int(label_map[r, c])][0]
                writer.writerow([name, f"2024-03-{i % 28 + 1:02d}", r, c, code, "demo"])
    return DemoSurvey(root, labelset_csv, annotations_csv, annotated_dir, new_dir, truth)
