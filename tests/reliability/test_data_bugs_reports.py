"""Issue 12 item 6, report bugs: zero-cover labels in legends; the report's classifier."""

from __future__ import annotations

import json
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


class _FakeSource:
    """What build_report reads from a Source: a history where the newest was rejected."""

    name = "reef"

    def __init__(self, history: list[Any]) -> None:
        self.history = history

    def counts(self) -> dict[str, int]:
        return {"images": 3, "confirmed_images": 3, "points": 27, "annotations": 27}

    def classifiers(self) -> list[Any]:
        return self.history

    def label_codes(self) -> dict[int, str]:
        return {1: "CCA", 2: "Sand"}

    def cover(self) -> pd.DataFrame:
        return pd.DataFrame()


def _info(cid: int, accepted: bool, accuracy: float | None) -> Any:
    from quadrat.store.queries import ClassifierInfo

    return ClassifierInfo(
        id=cid,
        source_id=1,
        extractor_key="texture:abc",
        kind="lr",
        accepted=accepted,
        accuracy=accuracy,
        n_images=3,
        n_train=20,
        n_val=7,
        train_seconds=0.1,
        created_at=None,
        metrics={} if accuracy is None else {"macro_f1": accuracy},
    )


def test_report_describes_the_active_classifier_and_lists_rejected_ones(tmp_path: Path) -> None:
    from quadrat.reports.summary import build_report, write_report

    history = [_info(1, True, 0.80), _info(2, True, 0.85), _info(3, False, 0.70)]
    report = build_report(_FakeSource(history))  # type: ignore[arg-type]
    assert report.classifier is not None
    assert report.classifier["id"] == 2 and report.classifier["accepted"]
    assert [r["id"] for r in report.rejected] == [3]
    rejected = report.rejected[0]
    assert rejected["compared_with"] == 2 and rejected["compared_accuracy"] == 0.85
    assert "0.700" in rejected["reason"] and "0.850" in rejected["reason"]
    write_report(report, tmp_path)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["id"] == 2 and written["rejected"][0]["id"] == 3


def test_report_with_nothing_accepted_has_no_active_classifier() -> None:
    from quadrat.reports.summary import build_report

    report = build_report(_FakeSource([_info(1, False, None)]))  # type: ignore[arg-type]
    assert report.classifier is None
    assert [r["id"] for r in report.rejected] == [1]
