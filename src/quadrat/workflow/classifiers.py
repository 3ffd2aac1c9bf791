"""Portable classifiers: export one file that another project can import and deploy.

The file is the stored classifier (safetensors arrays plus JSON, see
:mod:`quadrat.classifiers.serialize`) with a ``portable`` entry added to its JSON
metadata: the source's name and labelset (names, short codes, functional groups,
CoralNet ids), the extractor record (key, name, feature size, configuration with the
weights file's name and SHA-256) and the training facts (kind, accuracy, counts,
metrics). Nothing in it is executable; importing reads JSON and arrays only.

Import creates the source (or checks that an existing one has the classifier's labels),
renumbers the classifier's labels to the project's label ids, registers the extractor,
and stores the classifier as accepted, so it is the source's active one. It refuses a
classifier whose features could not be computed here: a CNN extractor's weights must be
on this machine (found by SHA-256), and the texture extractor must be the same version.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import quadrat
from quadrat._util import jsonable
from quadrat.errors import (
    ClassifierFormatError,
    ConflictError,
    InputError,
    StateError,
    WeightsError,
)
from quadrat.store import portable as portable_rows
from quadrat.store import queries, writes
from quadrat.store.features import record_extractor

if TYPE_CHECKING:
    from quadrat.store.portable import ExtractorInfo, LabelRow
    from quadrat.store.queries import ClassifierInfo
    from quadrat.workflow.project import Project
    from quadrat.workflow.source import Source

#: Version of the ``portable`` metadata entry (what export writes, import reads).
PORTABLE_VERSION = 1
#: The most labels a portable file may list (CoralNet's global labelset has about 10,000).
MAX_LABELS = 100_000
#: How many labelset differences an error lists before "and N more".
_SHOWN = 8


# ------------------------------------------------------------------------------ export


def portable_bytes(src: Source, classifier_id: int | None = None) -> bytes:
    """The classifier (default: the active one) with everything another project needs."""
    from quadrat.classifiers.serialize import with_metadata
    from quadrat.workflow.classify import chosen_classifier

    with src.project.store.session() as session:
        record = chosen_classifier(session, src, classifier_id)
        data = queries.classifier_model(session, record.id)
        labels = portable_rows.label_rows(session, src.id)
        extractor = portable_rows.extractor_record(session, record.extractor_key)
        dtype = portable_rows.stored_feature_dtype(session, src.id, record.extractor_key)
    if extractor is None:  # features.record_extractor runs before any feature is stored
        raise StateError(
            f"the extractor {record.extractor_key!r} of classifier {record.id} is not recorded"
        )
    portable = {
        "version": PORTABLE_VERSION,
        "source": src.name,
        "labelset": [asdict(label) for label in labels],
        "extractor": {
            "key": extractor.key,
            "name": extractor.name,
            "feature_dim": extractor.feature_dim,
            "config": _shareable_config(extractor.config),
        },
        # Features are rounded to this before scoring, so scores elsewhere match (deploy).
        "feature_dtype": dtype,
        "classifier": {
            "id": record.id,
            "kind": record.kind,
            "accepted": record.accepted,
            "accuracy": record.accuracy,
            "n_images": record.n_images,
            "n_train": record.n_train,
            "n_val": record.n_val,
            "train_seconds": record.train_seconds,
            "trained_at": None if record.created_at is None else record.created_at.isoformat(),
            "hyperparameters": record.hyperparameters,
            "metrics": record.metrics,
        },
        "exported_at": datetime.now(UTC).isoformat(),
        "quadrat": quadrat.__version__,
    }
    return with_metadata(data, {"portable": jsonable(portable)})


def export_classifier(src: Source, path: str | Path, classifier_id: int | None = None) -> Path:
    """Write the portable file of a classifier (default: the active one), atomically."""
    from quadrat.classifiers.serialize import write_classifier_file

    return write_classifier_file(path, portable_bytes(src, classifier_id))


def _shareable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The extractor configuration without this machine's folders (the weights file's name
    and SHA-256 say which file it is; where it lies here is no one else's business)."""
    shared = dict(config)
    if shared.get("weights"):
        shared["weights"] = Path(str(shared["weights"])).name
    return shared


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class PortableClassifier:
    """A portable classifier file, checked: its bytes and what its metadata says."""

    path: Path
    data: bytes
    sha256: str
    source: str
    labels: list[dict[str, Any]]
    classes: list[int]
    extractor: dict[str, Any]
    classifier: dict[str, Any]
    #: The precision the training features were stored in (float16/float32), if known.
    feature_dtype: str | None = None


def read_portable(path: str | Path) -> PortableClassifier:
    """Read and check a portable classifier file (no code runs: JSON and arrays only).

    A pickle, a truncated or foreign file, or one without the portable metadata (the
    bytes of a classifier not written by export) is a ClassifierFormatError.
    """
    from quadrat.classifiers.serialize import loads_estimator, read_classifier_file, read_header

    file = Path(path)
    data = read_classifier_file(file)
    header = read_header(data)
    portable = (header.get("metadata") or {}).get("portable")

    def bad(what: str) -> ClassifierFormatError:
        return ClassifierFormatError(f"{file}: {what}", path=file, param="path")

    if not isinstance(portable, dict):
        raise bad(
            "a classifier without its labelset and extractor (not an exported portable "
            "classifier file); export it again from its project"
        )
    version = portable.get("version")
    if version != PORTABLE_VERSION:
        raise bad(
            f"portable classifier version {version!r} is not supported by quadrat "
            f"{quadrat.__version__} (reads {PORTABLE_VERSION})"
        )
    source = portable.get("source")
    if not _is_text(source, 256):
        raise bad("no source name (1 to 256 characters)")
    labels = _checked_labels(portable.get("labelset"), bad)
    classes = loads_estimator(data).classes_.tolist()
    known = {label["id"] for label in labels}
    if not all(isinstance(c, int) and c in known for c in classes):
        raise bad("the classifier predicts labels its labelset does not list")
    extractor = _checked_extractor(portable.get("extractor"), bad)
    if extractor["feature_dim"] != int(header["n_features_in"]):
        raise bad(
            f"the extractor gives {extractor['feature_dim']} features but the classifier "
            f"reads {header['n_features_in']}"
        )
    dtype = portable.get("feature_dtype")
    classifier = portable.get("classifier")
    if not isinstance(classifier, dict) or classifier.get("kind") not in ("mlp", "lr"):
        raise bad("no training facts (classifier kind mlp or lr)")
    return PortableClassifier(
        path=file,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        source=str(source),
        labels=labels,
        classes=[int(c) for c in classes],
        extractor=extractor,
        classifier=classifier,
        feature_dtype=dtype if dtype in ("float16", "float32") else None,
    )


def _checked_labels(value: Any, bad: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > MAX_LABELS:
        raise bad(f"the labelset must be a list of 1 to {MAX_LABELS} labels")
    labels: list[dict[str, Any]] = []
    for entry in value:
        if not (
            isinstance(entry, dict)
            and _is_int(entry.get("id"))
            and _is_text(entry.get("name"), 256)
            and _is_text(entry.get("short_code"), 64)
            and (entry.get("functional_group") is None or _is_text(entry["functional_group"], 128))
            and (entry.get("coralnet_id") is None or _is_int(entry["coralnet_id"], 2**31))
        ):
            raise bad(f"a labelset entry is malformed: {str(entry)[:200]}")
        labels.append(
            {
                k: entry.get(k)
                for k in ("id", "name", "short_code", "functional_group", "coralnet_id")
            }
        )
    for key in ("id", "short_code"):
        if len({label[key] for label in labels}) != len(labels):
            raise bad(f"the labelset repeats a label {key}")
    return labels


def _checked_extractor(value: Any, bad: Any) -> dict[str, Any]:
    if not (
        isinstance(value, dict)
        and _is_text(value.get("key"), 256)
        and _is_text(value.get("name"), 256)
        and _is_int(value.get("feature_dim"), 2**31)
        and isinstance(value.get("config"), dict)
    ):
        raise bad("no extractor record (key, name, feature_dim, config)")
    sha = value["config"].get("weights_sha256")
    if sha is not None and not (
        isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
    ):
        raise bad(f"the extractor's weights_sha256 is not a SHA-256: {str(sha)[:80]!r}")
    return dict(value)


def _is_int(value: Any, bound: int | None = None) -> bool:
    """An integer (not a bool), within +-``bound`` when given (a database INTEGER)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return ok and (bound is None or -bound <= value < bound)


def _is_text(value: Any, longest: int = 1024) -> bool:
    """Non-blank text that fits its column (the store's lengths) and holds no NUL, which
    PostgreSQL refuses."""
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= longest
        and "\x00" not in value
    )


# ------------------------------------------------------------------------------ import


def import_classifier(
    project: Project,
    path: str | Path,
    source: str | None = None,
    *,
    weights: str | Path | None = None,
) -> ClassifierInfo:
    """Register a portable classifier file in ``project``; it becomes the source's active one.

    ``source`` defaults to the name in the file; a new source is created with the file's
    labelset, an existing one must have the classifier's labels (same short codes and
    names). ``weights``: the extractor's weights file on this machine, for a CNN extractor
    whose weights the project does not know yet (checked by SHA-256). All or nothing.
    """
    file = read_portable(path)
    name = source if source is not None else file.source
    if not name.strip():
        raise InputError("a source needs a name", value=name, param="source")
    with project.store.session() as session:
        known = portable_rows.extractor_record(session, file.extractor["key"])
    config = _local_config(file, known, weights)
    ext = file.extractor
    with project.store.session() as session:
        # The extractor row first: the reads below flush it before the classifier refers to it.
        record_extractor(session, ext["key"], ext["name"], ext["feature_dim"], config)
        if known is not None and known.config != config:
            writes.set_extractor_config(session, ext["key"], config)
        target = queries.find_source(session, name)
        if target is None:
            source_id = writes.add_source(session, name)
            ordered = sorted(file.labels, key=lambda label: label["id"])  # ids keep their order
            writes.add_labels(
                session,
                source_id,
                [
                    (lb["name"], lb["short_code"], lb["functional_group"], lb["coralnet_id"])
                    for lb in ordered
                ],
            )
        else:
            source_id = target.id
            _refuse_duplicate(session, source_id, file)
        mapping = _label_mapping(file, portable_rows.label_rows(session, source_id), name)
        classifier_id = writes.add_classifier(session, **_record_fields(file, source_id, mapping))
        return queries.get_classifier(session, source_id, classifier_id)


def _local_config(
    file: PortableClassifier, known: ExtractorInfo | None, weights: str | Path | None
) -> dict[str, Any]:
    """The extractor configuration for this machine, or an error saying what is missing.

    The texture extractor needs no weights but must be the same version (its key); a CNN
    needs its weights file here, given as ``weights`` or already known to the project.
    """
    extractor = file.extractor
    config = dict(extractor["config"])
    sha = config.get("weights_sha256")
    if extractor["name"] == "texture":
        from quadrat.extractors import create_extractor

        local = create_extractor("texture").key
        if extractor["key"] != local:
            raise InputError(
                f"{file.path}: the classifier was trained on {extractor['key']} features; this "
                f"quadrat computes {local}, which differ; retrain it on this version",
                value=extractor["key"],
            )
        return config
    if sha is None:
        if weights is not None:
            raise WeightsError(
                f"the extractor {extractor['key']} of {file.path} uses no weights file; "
                "give no weights",
                path=weights,
                param="weights",
            )
        return config  # seeded random weights: rebuilt from the name and seed alone
    expected = config.get("weights") or "(unnamed)"
    if weights is not None:
        found = _sha256(Path(weights))
        if found != sha:
            raise WeightsError(
                f"{weights} is not the weights file of {extractor['key']}: its sha256 is "
                f"{found}, the classifier needs {sha} (file {expected})",
                path=weights,
                value=found,
                param="weights",
            )
        return {**config, "weights": str(Path(weights).resolve())}
    stored = (known.config.get("weights") if known is not None else None) or ""
    if stored and Path(stored).is_file() and _sha256(Path(stored)) == sha:
        return {**config, "weights": stored}
    raise WeightsError(
        f"{file.path}: the classifier needs the weights of extractor {extractor['key']}: "
        f"file {expected} with sha256 {sha}, which this project does not have on this "
        "machine; give that weights file (weights)",
        value=sha,
        param="weights",
    )


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}", path=path, param="weights")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _refuse_duplicate(session: Any, source_id: int, file: PortableClassifier) -> None:
    for info in queries.classifier_history(session, source_id):
        if (info.hyperparameters.get("imported") or {}).get("sha256") == file.sha256:
            raise ConflictError(
                f"{file.path} is already imported as classifier {info.id}",
                path=file.path,
                value=info.id,
            )


def _label_mapping(file: PortableClassifier, here: list[LabelRow], source: str) -> dict[int, int]:
    """File label id -> this source's label id, by short code; the classifier's labels
    must all be here under the same name (and CoralNet id, where both have one)."""
    by_code = {label.short_code: label for label in here}
    wanted = set(file.classes)
    problems: list[str] = []
    mapping: dict[int, int] = {}
    for label in file.labels:
        mine = by_code.get(label["short_code"])
        if mine is None:
            if label["id"] in wanted:
                problems.append(f"{label['short_code']} ({label['name']}) is missing")
            continue
        if label["id"] in wanted:
            if mine.name != label["name"]:
                problems.append(
                    f"{label['short_code']} is {label['name']!r} in the file, {mine.name!r} here"
                )
            elif (
                None not in (mine.coralnet_id, label["coralnet_id"])
                and mine.coralnet_id != label["coralnet_id"]
            ):
                problems.append(
                    f"{label['short_code']} has CoralNet id {label['coralnet_id']} in the file, "
                    f"{mine.coralnet_id} here"
                )
        mapping[label["id"]] = mine.id
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise InputError(
            f"the labelset of source {source!r} does not match the classifier's "
            f"({'; '.join(problems[:_SHOWN])}{more}); import it into a new source",
            value=source,
            param="source",
        )
    return mapping


def _record_fields(
    file: PortableClassifier, source_id: int, mapping: dict[int, int]
) -> dict[str, Any]:
    """The ``classifiers`` row of an imported classifier (accepted: it becomes active)."""
    from quadrat.classifiers.serialize import loads_estimator, relabel

    facts = file.classifier
    model = relabel(file.data, mapping)
    loads_estimator(model)  # renumbered, it still loads
    metrics = _mapping(facts.get("metrics"))
    hyper = _mapping(facts.get("hyperparameters"))
    hyper = {
        **hyper,
        "imported": {
            "file": file.path.name,
            "sha256": file.sha256,
            "source": file.source,
            "classifier_id": facts.get("id"),
            "trained_at": facts.get("trained_at"),
        },
    }
    if file.feature_dtype is not None:
        hyper["feature_dtype"] = file.feature_dtype
    return {
        "source_id": source_id,
        "extractor_key": file.extractor["key"],
        "kind": facts["kind"],
        "hyperparameters": jsonable(hyper),
        "metrics": jsonable(metrics),
        "n_images": _count(facts.get("n_images")),
        "n_train": _count(facts.get("n_train")),
        "n_val": _count(facts.get("n_val")),
        "accuracy": _fraction(facts.get("accuracy")),
        "accepted": True,
        "train_seconds": float(facts["train_seconds"])
        if _is_number(facts.get("train_seconds"))
        else 0.0,
        "model": model,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> int:
    return int(value) if _is_int(value) and value >= 0 else 0


def _fraction(value: Any) -> float | None:
    return float(value) if _is_number(value) and 0.0 <= value <= 1.0 else None
