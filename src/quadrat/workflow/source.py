"""``quadrat.Source``: one survey of a project, and every step of its workflow.

A source is CoralNet's unit: a labelset, images with points, features, classifiers. The
handle holds the project and the source's id only; each method opens its own
transaction, so steps are all-or-nothing (import, points, training, classification) or
whole images at a time (extraction), and can be re-run. The steps themselves live in
one module each (:mod:`~quadrat.workflow.importing`, :mod:`~quadrat.workflow.points`,
:mod:`~quadrat.workflow.extract`, :mod:`~quadrat.workflow.train`,
:mod:`~quadrat.workflow.classify`, :mod:`~quadrat.workflow.exports`); this class is the
one place a user (or the CLI, or a service) calls them from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from quadrat.store import queries, writes
from quadrat.store.queries import ClassifierInfo, SourceInfo
from quadrat.workflow._common import Progress, check_threshold

if TYPE_CHECKING:
    import pandas as pd

    from quadrat.classifiers.policy import TrainingPolicy
    from quadrat.extraction import Runner
    from quadrat.extractors import Extractor
    from quadrat.reports.summary import SourceReport
    from quadrat.workflow.classify import ClassifySummary
    from quadrat.workflow.extract import ExtractSummary
    from quadrat.workflow.importing import ImportSummary
    from quadrat.workflow.project import Project
    from quadrat.workflow.train import PolicyProgress, TrainOutcome


class Source:
    """A handle on one source of a :class:`~quadrat.workflow.project.Project`.

    Get one from ``project.source(name)``, ``project.sources`` or
    ``project.create_source(...)``.
    """

    def __init__(self, project: Project, source_id: int, name: str) -> None:
        self.project = project
        self.id = source_id
        self.name = name

    def __repr__(self) -> str:
        return f"Source({self.name!r}, project={self.project.url!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Source)
            and other.id == self.id
            and other.project.url == self.project.url
        )

    def __hash__(self) -> int:
        return hash((self.project.url, self.id))

    def info(self) -> SourceInfo:
        """The source's settings as stored now (point spec, confidence threshold)."""
        with self.project.store.session() as session:
            return queries.source_by_id(session, self.id)

    @property
    def point_spec(self) -> str | None:
        """Default point spec for new images (CoralNet notation), or None."""
        return self.info().point_spec

    @property
    def confidence_threshold(self) -> float | None:
        """Machine labels scored at or above this are auto-accepted; None: never."""
        return self.info().confidence_threshold

    @property
    def annotation_area(self) -> str | None:
        """Where generated points may fall, in CoralNet's stored form (``5;95;5;95``: percent
        of the width and height; ``x0,x1,y0,y1``: pixels), or None for the whole image."""
        return self.info().annotation_area

    def set_annotation_area(self, value: str | None) -> None:
        """Save the annotation area for points generated from now on (None: whole image).

        Points already placed stay where they are.
        """
        from quadrat.points import AnnotationArea

        text = None if value is None else AnnotationArea.check_text(value, param="annotation_area")
        with self.project.store.session() as session:
            writes.update_source(session, self.id, annotation_area=text)

    def set_confidence_threshold(self, value: float | None) -> None:
        """Save the alleviation threshold in [0, 1] (None switches it off)."""
        check_threshold(value, "value")
        with self.project.store.session() as session:
            writes.update_source(session, self.id, confidence_threshold=value)

    # ------------------------------------------------------------------------- import

    def import_labelset(self, path: str | Path, *, format: str = "coralnet") -> int:
        """Add the labels of a CoralNet labelset CSV that the source lacks; returns how many.

        Another ``format`` (``"biigle-label-tree"``) reads that format (docs/formats.md).
        """
        if format != "coralnet":
            from quadrat.workflow import formats

            return formats.import_labelset(self, path, format)
        from quadrat.workflow import importing

        return importing.import_labelset(self, path)

    def import_annotations(
        self,
        csv_path: str | Path,
        image_dir: str | Path | None = None,
        exclude: Sequence[str] = (),
        progress: Progress | None = None,
        *,
        skip_missing: bool = False,
        format: str = "coralnet",
        label_mapping: str = "id_only",
    ) -> ImportSummary:
        """Import a CoralNet annotation CSV and its images from ``image_dir``, all or nothing.

        Images whose name matches a glob in ``exclude`` are left out. ``skip_missing``:
        images absent from ``image_dir`` are left out too and listed in the summary's
        ``skipped`` (by default one missing image stops the import). Another ``format``
        (``quadrat.io.formats.list_formats()``; docs/formats.md) reads that format;
        without ``image_dir`` its points go onto stored images that have none yet.
        """
        if format != "coralnet":
            from quadrat.workflow import formats

            return formats.import_annotations(
                self,
                csv_path,
                format,
                image_dir,
                exclude=exclude,
                progress=progress,
                skip_missing=skip_missing,
                label_mapping=label_mapping,
            )
        from quadrat.errors import InputError
        from quadrat.workflow import importing

        if image_dir is None:
            raise InputError(
                "a CoralNet annotation CSV needs the folder of its images", param="image_dir"
            )
        return importing.import_annotations(
            self, csv_path, image_dir, exclude, progress, skip_missing=skip_missing
        )

    def import_images(
        self, paths: Sequence[str | Path], progress: Progress | None = None
    ) -> ImportSummary:
        """Add unannotated images (files, or folders of images), all or nothing."""
        from quadrat.workflow import importing

        return importing.import_images(self, paths, progress)

    def generate_points(self, spec: str | None = None, seed: int = 0) -> int:
        """Give every image without points a point set (``spec`` or the source's default)."""
        from quadrat.workflow import points

        return points.generate_points(self, spec, seed=seed)

    # ------------------------------------------------------------------------- features

    def extract(
        self,
        extractor: Extractor | str,
        dtype: str = "float16",
        workers: int = 2,
        runner: Runner | None = None,
        progress: Progress | None = None,
    ) -> ExtractSummary:
        """Extract and store features for every point that lacks them (resumable).

        ``extractor`` is an :class:`~quadrat.extractors.Extractor` or a name given to
        :func:`quadrat.create_extractor`.
        """
        from quadrat.workflow import extract

        return extract.extract(self, extractor, dtype, workers, runner, progress)

    def extractor_key(self, name_or_key: str | None = None) -> str:
        """The key of the stored features to use: by key, by extractor name, or the only one."""
        from quadrat.workflow import extract

        return extract.extractor_key(self, name_or_key)

    def extractor_keys(self) -> list[str]:
        """Keys of every extractor whose features are stored for this source."""
        with self.project.store.session() as session:
            return [key for key, _name in queries.stored_extractors(session, self.id)]

    # ------------------------------------------------------------------------- classifiers

    def train(
        self,
        extractor_key: str | None = None,
        kind: str = "mlp",
        force: bool = False,
        policy: TrainingPolicy | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> TrainOutcome:
        """Train a classifier when the policy calls for one (or ``force``); keep it if better.

        Below the policy's threshold nothing is trained and the outcome says why
        (``trained=False``). ``device`` trains with PyTorch there; None with scikit-learn.
        """
        from quadrat.workflow import train

        return train.train(
            self, extractor_key, kind=kind, force=force, policy=policy, seed=seed, device=device
        )

    def policy_progress(
        self, extractor_key: str | None = None, policy: TrainingPolicy | None = None
    ) -> PolicyProgress:
        """Where the source stands in the retraining policy: whether a classifier is due,
        the confirmed images, and the count at which the next one is trained."""
        from quadrat.workflow import train

        return train.policy_progress(self, extractor_key, policy)

    def classify(
        self,
        threshold: float | None = None,
        classifier_id: int | None = None,
        progress: Progress | None = None,
        hierarchical_threshold: float | None = None,
        hierarchy: str | Path | None = None,
    ) -> ClassifySummary:
        """Score every point no person labelled (top-5, machine label, alleviation).

        ``threshold`` overrides the source's confidence threshold for this run;
        ``classifier_id`` defaults to the active (latest accepted) classifier.
        ``hierarchical_threshold`` also counts the points answered by a parent label in
        ``hierarchy`` (docs/hierarchy.md; :meth:`answers` lists them).
        """
        from quadrat.workflow import classify

        return classify.classify(
            self,
            threshold=threshold,
            classifier_id=classifier_id,
            progress=progress,
            hierarchical_threshold=hierarchical_threshold,
            hierarchy=hierarchy,
        )

    def answers(self, threshold: float, hierarchy: str | Path | None = None) -> pd.DataFrame:
        """Every machine-scored point with its hierarchical answer: the deepest node of
        ``hierarchy`` (None: the labelset's functional groups; a CATAMI mapping CSV; a
        BIIGLE label tree JSON) whose summed scores reach ``threshold`` (docs/hierarchy.md).
        """
        from quadrat.workflow import exports

        return exports.answers(self, threshold, hierarchy)

    def export_classifier(self, path: str | Path, classifier_id: int | None = None) -> Path:
        """Write a classifier (default: the active one) to ``path`` as a portable file.

        Plain arrays and JSON (safetensors), never code: see
        :mod:`quadrat.classifiers.serialize`.
        """
        from quadrat.workflow import classify

        return classify.export_classifier(self, path, classifier_id)

    def classifiers(self) -> list[ClassifierInfo]:
        """The classifier history, oldest first (accepted and rejected)."""
        with self.project.store.session() as session:
            return queries.classifier_history(session, self.id)

    def active_classifier(self) -> ClassifierInfo | None:
        """The classifier :meth:`classify` uses by default: the latest accepted one."""
        with self.project.store.session() as session:
            return queries.latest_classifier(session, self.id)

    # ------------------------------------------------------------------------- labelling help

    def suggest(
        self,
        n: int = 20,
        strategy: str = "margin",
        by: Literal["points", "images"] = "points",
        diversity: bool = True,
        seed: int = 0,
    ) -> pd.DataFrame:
        """The ``n`` unconfirmed points (or images) to label next, most wanted first.

        ``strategy``: margin, entropy or random; ``diversity`` keeps the batch spread over
        the features. See :func:`quadrat.workflow.suggest.suggest` and docs/suggest-audit.md.
        """
        from quadrat.workflow import suggest

        return suggest.suggest(self, n, strategy=strategy, by=by, diversity=diversity, seed=seed)

    def audit(
        self,
        extractor_key: str | None = None,
        folds: int = 5,
        k: int = 10,
        seed: int = 0,
        max_agreement: float | None = 0.5,
        all_points: bool = False,
    ) -> pd.DataFrame:
        """Person-given labels that cross-validated predictions and neighbours disagree
        with, most suspect first (:func:`quadrat.workflow.audit.audit`)."""
        from quadrat.workflow import audit

        return audit.audit(
            self,
            extractor_key=extractor_key,
            folds=folds,
            k=k,
            seed=seed,
            max_agreement=max_agreement,
            all_points=all_points,
        )

    def similar_points(self, point_id: int, k: int = 12) -> pd.DataFrame:
        """The ``k`` points nearest to ``point_id`` in feature space ("patches like this")."""
        from quadrat.workflow import audit

        return audit.similar_points(self, point_id, k)

    # ------------------------------------------------------------------------- tables

    def labelset(self) -> pd.DataFrame:
        """The labelset: label_id (CoralNet's), name, short_code, functional_group."""
        with self.project.store.session() as session:
            return queries.labelset_table(session, self.id)

    def label_codes(self) -> dict[int, str]:
        """Label id (as in classifier metrics and ``ClassifierInfo``) -> short code."""
        with self.project.store.session() as session:
            return queries.label_codes(session, self.id)

    def annotations(self) -> pd.DataFrame:
        """Every point with its label, status, annotator and latest top-5 suggestions."""
        with self.project.store.session() as session:
            return queries.annotation_table(session, self.id)

    def cover(
        self,
        intervals: bool = False,
        *,
        level: str = "image",
        corrected: str = "none",
        confidence: float = 0.95,
        replicates: int = 1000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Per-image percent cover (CoralNet's image-covers table).

        With ``intervals`` (or another ``level``, or ``corrected``): cover per ``level``
        (``"image"``, ``"source"``, ``"site:COLUMN"`` for an image metadata column) with
        ``<label> estimate`` / ``lower`` / ``upper`` columns: a two-stage bootstrap
        (``replicates``, ``seed``) at ``confidence``, machine labels ``corrected`` for the
        classifier's confusions (``"acc"``, ``"pacc"``) or not (``"none"``). docs/cover.md.
        """
        from quadrat.workflow import exports

        if not intervals and level == "image" and corrected == "none":
            return exports.cover(self)
        return exports.cover(
            self,
            intervals,
            level=level,
            corrected=corrected,
            confidence=confidence,
            replicates=replicates,
            seed=seed,
        )

    def counts(self) -> dict[str, int]:
        """images, confirmed_images, points, annotations, and points by status."""
        with self.project.store.session() as session:
            return queries.counts(session, self.id)

    # ------------------------------------------------------------------------- outputs

    def export_annotations(
        self,
        path: str | Path,
        *,
        escape_formulas: bool = False,
        format: str = "coralnet",
        hierarchical_threshold: float | None = None,
        hierarchy: str | Path | None = None,
        **options: Any,
    ) -> int:
        """Write annotated points as a CoralNet annotation CSV; returns the rows written.

        ``escape_formulas``: prefix ``'`` to text cells a spreadsheet would read as a formula.
        ``hierarchical_threshold`` adds each point's hierarchical answer after CoralNet's
        columns (``Answer``, ``Answer level``, ``Answer confidence``; docs/hierarchy.md).
        Another ``format`` writes that format (``options`` go to its writer), see
        :meth:`export`.
        """
        if format != "coralnet":
            return self.export(format, path, **options)
        from quadrat.workflow import exports

        return exports.export_annotations(
            self,
            path,
            escape_formulas=escape_formulas,
            hierarchical_threshold=hierarchical_threshold,
            hierarchy=hierarchy,
        )

    def export(self, format: str, path: str | Path, **options: Any) -> int:
        """Write the source in another tool's ``format`` (docs/formats.md; e.g. ``"cpce"``,
        ``"viame"``, ``"coco"``, ``"geojson"``, ``"coralnet-points"``); returns the
        records written."""
        from quadrat.workflow import formats

        return formats.export(self, path, format, **options)

    def export_cover(
        self,
        path: str | Path,
        *,
        escape_formulas: bool = False,
        intervals: bool = False,
        level: str = "image",
        corrected: str = "none",
        confidence: float = 0.95,
        replicates: int = 1000,
        seed: int = 0,
    ) -> int:
        """Write CoralNet's percent-cover CSV; returns the rows (images) written.

        ``escape_formulas``: prefix ``'`` to text cells a spreadsheet would read as a formula.
        ``intervals``, ``level``, ``corrected``...: as :meth:`cover` (columns added after
        CoralNet's; without them the file is CoralNet's own).
        """
        from quadrat.workflow import exports

        if not intervals and level == "image" and corrected == "none":
            return exports.export_cover(self, path, escape_formulas=escape_formulas)
        return exports.export_cover(
            self,
            path,
            escape_formulas=escape_formulas,
            intervals=intervals,
            level=level,
            corrected=corrected,
            confidence=confidence,
            replicates=replicates,
            seed=seed,
        )

    def export_labelset(self, path: str | Path, *, escape_formulas: bool = False) -> int:
        """Write the labelset as a CoralNet labelset CSV; returns the rows written.

        ``escape_formulas``: prefix ``'`` to text cells a spreadsheet would read as a formula.
        """
        from quadrat.workflow import exports

        return exports.export_labelset(self, path, escape_formulas=escape_formulas)

    def report(
        self, out_dir: str | Path | None = None, target_accuracy: float = 0.95
    ) -> SourceReport:
        """Counts, the latest classifier's metrics and cover; with ``out_dir``, also write
        plots, metrics.json and cover.csv there (listed in ``report.files``).

        ``target_accuracy``: what the suggested alleviation threshold should keep.
        """
        from quadrat.reports.summary import build_report, write_report

        report = build_report(self, target_accuracy=target_accuracy)
        if out_dir is not None:
            report.files = write_report(report, Path(out_dir))
        return report
