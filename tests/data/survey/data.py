"""A tiny synthetic survey for workflow and CLI tests (quadrat's demo generator, made small)."""

from __future__ import annotations

from pathlib import Path

from quadrat.demo import DemoSurvey, make_demo_survey


def make_survey(root: Path, *, n_annotated: int = 20, n_new: int = 2, seed: int = 0) -> DemoSurvey:
    """20 annotated 240x320 images with 12 points each, plus ``n_new`` unannotated ones."""
    return make_demo_survey(
        root, n_annotated=n_annotated, n_new=n_new, points_per_image=12, size=(240, 320), seed=seed
    )
