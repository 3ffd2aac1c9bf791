"""A source at a glance: counts, the latest classifier's metrics, alleviation, cover."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from quadrat.classifiers.metrics import choose_threshold
from quadrat.engine import confirmed_image_ids, latest_classifier
from quadrat.io.atomic import write_text
from quadrat.reports.exports import source_cover
from quadrat.store.project import Project
from quadrat.store.schema import Annotation, Image, Label, Point


@dataclass
class SourceReport:
    source: str
    n_images: int
    n_confirmed_images: int
    n_points: int
    status_counts: dict[str, int]
    target_accuracy: float
    classifier: dict[str, Any] | None = None
    per_label: list[dict[str, Any]] = field(default_factory=list)
    curve: pd.DataFrame | None = None
    suggested_threshold: dict[str, float] | None = None
    cover: pd.DataFrame | None = None
    overall_cover: dict[str, float] = field(default_factory=dict)


def build_report(
    project: Project, source_name: str, *, target_accuracy: float = 0.95
) -> SourceReport:
    with project.session() as session:
        source = project.source(session, source_name)
        n_images = (
            session.scalar(select(func.count(Image.id)).where(Image.source_id == source.id)) or 0
        )
        n_points = (
            session.scalar(
                select(func.count(Point.id))
                .join(Image, Image.id == Point.image_id)
                .where(Image.source_id == source.id)
            )
            or 0
        )
        status_rows = session.execute(
            select(Annotation.status, func.count(Annotation.id))
            .join(Label, Label.id == Annotation.label_id)
            .where(Label.source_id == source.id)
            .group_by(Annotation.status)
        ).all()
        counts = {str(status): int(n) for status, n in status_rows}
        counts["unannotated"] = int(n_points) - sum(counts.values())
        report = SourceReport(
            source=source_name,
            n_images=int(n_images),
            n_confirmed_images=len(confirmed_image_ids(session, source)),
            n_points=int(n_points),
            status_counts=counts,
            target_accuracy=target_accuracy,
        )
        record = latest_classifier(session, source, accepted_only=False)
        if record is not None:
            codes = dict(
                session.execute(
                    select(Label.id, Label.short_code).where(Label.source_id == source.id)
                ).all()
            )
            metrics = dict(record.metrics)
            report.classifier = {
                "id": record.id,
                "kind": record.kind,
                "extractor_key": record.extractor_key,
                "accepted": record.accepted,
                "accuracy": record.accuracy,
                "macro_f1": float(metrics.get("macro_f1", float("nan"))),
                "n_train": record.n_train,
                "n_val": record.n_val,
                "n_images": record.n_images,
                "train_seconds": record.train_seconds,
                "hyperparameters": record.hyperparameters,
                "metrics": metrics,
            }
            report.per_label = [
                {**row, "label": codes.get(_as_int(row["label"]), row["label"])}
                for row in _per_label_rows(metrics.get("per_label"))
            ]
            if metrics.get("alleviate_curve"):
                report.curve = pd.DataFrame(metrics["alleviate_curve"])
                chosen = choose_threshold(report.curve, target_accuracy)
                if chosen is not None:
                    row = report.curve.loc[(report.curve["threshold"] - chosen).abs().idxmin()]
                    report.suggested_threshold = {
                        k: float(row[k])
                        for k in ("threshold", "accuracy_accepted", "fraction_accepted")
                    }
            report.classifier["label_codes"] = codes
    cover = source_cover(project, source_name)
    report.cover = cover
    label_columns = [c for c in cover.columns[4:]]
    if len(cover):
        report.overall_cover = {
            str(c): float(cover[c].mean()) for c in label_columns if cover[c].mean() > 0
        }
    return report


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _per_label_rows(per_label: Any) -> list[dict[str, Any]]:
    """Per-label metrics as stored (a column-oriented dict or a list of rows)."""
    if per_label is None:
        return []
    frame = pd.DataFrame(per_label)
    return frame.to_dict(orient="records")


def write_report(report: SourceReport, out: Path) -> list[Path]:
    """Plots (alleviate curve, confusion matrix, cover), metrics.json and cover.csv."""
    from quadrat.io.coralnet import write_percent_cover_csv
    from quadrat.reports.plots import plot_alleviate_curve, plot_confusion_matrix, plot_cover

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if report.classifier is not None:
        metrics = report.classifier["metrics"]
        if report.curve is not None:
            chosen = report.suggested_threshold["threshold"] if report.suggested_threshold else None
            written.append(
                plot_alleviate_curve(
                    report.curve, out / "alleviate_curve.png", chosen_threshold=chosen
                )
            )
        if metrics.get("confusion") is not None:
            codes = report.classifier["label_codes"]
            labels = [codes.get(_as_int(x), str(x)) for x in metrics.get("labels", [])]
            written.append(
                plot_confusion_matrix(
                    np.asarray(metrics["confusion"]), labels, out / "confusion_matrix.png"
                )
            )
        summary = {k: v for k, v in report.classifier.items() if k not in ("label_codes",)}
        write_text(out / "metrics.json", json.dumps(summary, indent=2, default=str))
        written.append(out / "metrics.json")
    if report.cover is not None and len(report.cover):
        written.append(write_percent_cover_csv(report.cover, out / "cover.csv"))
        wide = report.cover.set_index("Image name").iloc[:, 3:]
        written.append(plot_cover(wide, out / "cover.png", title=f"Cover: {report.source}"))
    return written

