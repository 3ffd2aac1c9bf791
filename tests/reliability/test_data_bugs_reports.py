"""Issue 12 item 6, report bugs: zero-cover labels in legends; the report's classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quadrat.reports import plots


def _legend_and_bars(monkeypatch: pytest.MonkeyPatch, cover: Any, tmp_path: Path) -> list[str]:
    """The legend entries (stacked) or bar labels (overall) that plot_cover draws."""
    seen: dict[str, Any] = {}

    def capture(fig: Any, path: str | Path, dpi: int = 120) -> Path:
        seen["fig"] = fig
        return Path(path)

    monkeypatch.setattr(plots, "_save", capture)
    plots.plot_cover(cover, tmp_path / "cover.png")
    ax = seen["fig"].axes[0]
    legend = ax.get_legend()
    if legend is not None:
        return [t.get_text() for t in legend.get_texts()]
    return [t.get_text() for t in ax.get_xticklabels()]


def test_zero_cover_labels_are_left_out_of_the_legend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wide = pd.DataFrame(
        {"CCA": [0.5, 0.2, 0.0], "Sand": [0.0, 0.0, 0.0], "Turf": [0.5, 0.8, 1.0]},
        index=["a.jpg", "b.jpg", "c.jpg"],
    )
    assert _legend_and_bars(monkeypatch, wide, tmp_path) == ["Turf", "CCA"]


def test_zero_cover_labels_are_left_out_of_the_overall_bars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overall = pd.Series({"CCA": 0.6, "Sand": 0.0, "Turf": 0.4})
    assert _legend_and_bars(monkeypatch, overall, tmp_path) == ["CCA", "Turf"]
    assert list(plots.cover_plot_table(overall).columns) == ["CCA", "Turf"]
