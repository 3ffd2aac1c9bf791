"""CoralNet annotation exports and uploads: ``Name,Row,Column[,Label code],...``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quadrat.errors import CsvFormatError, InputError
from quadrat.io.coralnet._cells import (
    RowChecks,
    blank,
    checked_nonneg_int,
    floats,
    format_dates,
    parse_dates,
    text_cells,
    write_csv,
)
from quadrat.io.csv import header_key
from quadrat.io.csv_chunks import CSV_CHUNK_BYTES, iter_csv
from quadrat.limits import Limits, current

#: CoralNet's image-metadata export columns, in its export order (aux columns may carry
#: a source's own names, e.g. "Site" for Aux1; any unknown column is kept as metadata).
METADATA_COLUMNS: tuple[str, ...] = (
    "Date",
    "Aux1",
    "Aux2",
    "Aux3",
    "Aux4",
    "Aux5",
    "Height (cm)",
    "Latitude",
    "Longitude",
    "Depth",
    "Camera",
    "Photographer",
    "Water quality",
    "Strobes",
    "Framing gear used",
    "White balance card",
    "Comments",
)

#: A per-point column some exports carry (the label's full name): read as ``long_label``,
#: never as image metadata; written from each point's label (``long_label``).
LONG_LABEL = "Long Label"

#: CoralNet exports the machine's top 5 suggestions per point.
N_SUGGESTIONS = 5

_LABEL_HEADERS = ("label code", "label", "label id")  # preference order
_SUGGESTION_RE = re.compile(r"^machine (suggestion|confidence) (\d+)$")

#: Normalised annotation columns that are not metadata (everything else is).
_CORE = {
    "image",
    "row",
    "column",
    "label",
    "label_id",
    "long_label",
    "annotator",
    "date_annotated",
    "line",
}


def read_annotations_csv(
    path: str | Path, *, limits: Limits | None = None, chunk_bytes: int | None = CSV_CHUNK_BYTES
) -> pd.DataFrame:
    """Read a CoralNet annotation export or upload CSV into a normalised frame.

    Columns: ``image`` (string), ``row``/``column`` (int64), ``label`` (string, <NA> when
    blank or when the file has no label column), ``label_id`` (only when a ``Label ID``
    column accompanies a ``Label code``/``Label`` column), ``long_label`` (only when the
    file has a ``Long Label`` column: the label's full name, per point), ``annotator``
    (string),
    ``date_annotated`` (UTC datetime), the metadata columns under their CoralNet names
    (strings), ``machine_suggestion_K``/``machine_confidence_K`` (confidence as a 0-1
    fraction) when present, and ``line`` (1-based line in the file; header = 1).
    ``df.attrs``: ``path``, ``label_column`` (the header the labels came from, or None),
    ``metadata_columns``.

    The file is refused (LimitError) over ``limits.csv_bytes``/``csv_rows``, or when an
    image has more than ``limits.points_per_image`` points.

    The text is parsed and normalised ``chunk_bytes`` at a time
    (:func:`quadrat.io.csv_chunks.iter_csv`; None: the whole file at once), so only the
    normalised frame is ever whole in memory; the result and every error (message, line,
    "N more such rows") are the same for any chunk size.
    """
    path = Path(path)
    limits = current(limits)
    checks = RowChecks(path)
    parts: list[pd.DataFrame] = []
    layout: _Layout | None = None
    for table in iter_csv(path, limits=limits, chunk_bytes=chunk_bytes):
        if layout is None:
            layout = _layout(path, table.header)
        parts.append(_normalise(table.frame, table.lines, layout, checks))
    assert layout is not None  # iter_csv yields at least the header's chunk
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    del parts

    checks.raise_first([_NAME_EMPTY])
    image = frame["image"]
    counts = image.value_counts()
    if len(counts) and int(counts.iloc[0]) > limits.points_per_image:
        name = counts.index[0]
        over = int((counts > limits.points_per_image).sum())
        limits.check(
            "points_per_image",
            int(counts.iloc[0]),
            what=f"image {name!r} has too many points"
            + (f" ({over - 1} more images over the limit)" if over > 1 else ""),
            path=path,
            line=int(frame["line"].iloc[int(np.flatnonzero((image == name).to_numpy(bool))[0])]),
        )
    checks.raise_first()
    frame.attrs.update(
        path=str(path), label_column=layout.label_column, metadata_columns=list(layout.metadata)
    )
    return frame


_NAME_EMPTY = "Name is empty"


@dataclass(frozen=True)
class _Layout:
    """Which header holds what, decided once from the header row."""

    seen: dict[str, str]  # header key -> header as written
    label_key: str | None
    label_column: str | None
    long_label: bool
    metadata: list[str]
    suggestions: dict[int, dict[str, str]]  # K -> {"suggestion"|"confidence": header}


def _layout(path: Path, header: list[str]) -> _Layout:
    keys = [header_key(h) for h in header]
    seen: dict[str, str] = {}
    for h, k in zip(header, keys, strict=True):
        if k in seen:
            raise CsvFormatError(
                f"duplicate column {h!r} (also {seen[k]!r})", path=path, line=1, value=h
            )
        seen[k] = h
    missing = [name for name in ("Name", "Row", "Column") if name.lower() not in seen]
    if missing:
        raise CsvFormatError(
            f"missing required column(s) {', '.join(missing)}; found {', '.join(header) or 'none'}"
            " (CoralNet's form: Name,Row,Column[,Label code])",
            path=path,
            line=1,
            value=missing,
        )
    label_key = next((k for k in _LABEL_HEADERS if k in seen), None)
    used = {"name", "row", "column", "annotator", "date annotated"}
    long_key = header_key(LONG_LABEL)
    if long_key in seen:
        used.add(long_key)
    if label_key:
        used.add(label_key)
        if label_key != "label id" and "label id" in seen:
            used.add("label id")
    suggestions: dict[int, dict[str, str]] = {}
    for h, k in zip(header, keys, strict=True):
        match = _SUGGESTION_RE.match(k)
        if match:
            suggestions.setdefault(int(match.group(2)), {})[match.group(1)] = h
            used.add(k)
    return _Layout(
        seen=seen,
        label_key=label_key,
        label_column=seen[label_key] if label_key else None,
        long_label=long_key in seen,
        metadata=[h for h, k in zip(header, keys, strict=True) if k not in used],
        suggestions=suggestions,
    )


def _normalise(
    body: pd.DataFrame, lines: np.ndarray, layout: _Layout, checks: RowChecks
) -> pd.DataFrame:
    """One chunk's rows in the normalised form; bad cells are noted in ``checks``."""
    seen = layout.seen
    out: dict[str, pd.Series] = {}
    image = text_cells(body[seen["name"]])
    checks.note(_NAME_EMPTY, image.isna().to_numpy(), image, lines)
    out["image"] = image
    out["row"] = checked_nonneg_int(body[seen["row"]], "Row", lines, checks)
    out["column"] = checked_nonneg_int(body[seen["column"]], "Column", lines, checks)

    label_key = layout.label_key
    if label_key is None:
        out["label"] = pd.Series(pd.NA, index=body.index, dtype="string")
    else:
        out["label"] = text_cells(body[seen[label_key]])
        if label_key != "label id" and "label id" in seen:
            out["label_id"] = text_cells(body[seen["label id"]])

    out["annotator"] = (
        text_cells(body[seen["annotator"]])
        if "annotator" in seen
        else pd.Series(pd.NA, index=body.index, dtype="string")
    )
    if "date annotated" in seen:
        raw_dates = text_cells(body[seen["date annotated"]])
        dates, bad_dates = parse_dates(raw_dates)
        checks.note("Date annotated is not a date-time, got {value}", bad_dates, raw_dates, lines)
        out["date_annotated"] = dates
    else:
        out["date_annotated"] = pd.Series(pd.NaT, index=body.index, dtype="datetime64[ns, UTC]")

    if layout.long_label:
        out["long_label"] = text_cells(body[seen[header_key(LONG_LABEL)]])
    for h in layout.metadata:
        out[h] = text_cells(body[h])

    for n in sorted(layout.suggestions):
        cols = layout.suggestions[n]
        if "suggestion" in cols:
            out[f"machine_suggestion_{n}"] = text_cells(body[cols["suggestion"]])
        if "confidence" in cols:
            raw_conf = text_cells(body[cols["confidence"]])
            conf, bad = floats(raw_conf)
            with np.errstate(invalid="ignore"):
                bad |= (conf < 0) | (conf > 100)
            checks.note(f"{cols['confidence']} must be 0-100, got {{value}}", bad, raw_conf, lines)
            out[f"machine_confidence_{n}"] = pd.Series(conf / 100.0, index=body.index)

    out["line"] = pd.Series(lines, index=body.index, dtype="int64")
    return pd.DataFrame(out)


def _suggestion_numbers(df: pd.DataFrame) -> list[int]:
    numbers = set()
    for column in df.columns:
        match = re.fullmatch(r"machine_(suggestion|confidence)_(\d+)", str(column))
        if match and df[column].notna().any():
            numbers.add(int(match.group(2)))
    if not numbers:
        return []
    return list(range(1, max(max(numbers), N_SUGGESTIONS) + 1))


def write_annotations_csv(
    df: pd.DataFrame,
    path: str | Path,
    *,
    label_header: str | None = None,
    escape_formulas: bool = False,
    extra: pd.DataFrame | None = None,
) -> Path:
    """Write annotations in CoralNet's export form (atomically).

    ``extra``: columns written as they are after CoralNet's (one row per row of ``df``,
    in order), e.g. quadrat's hierarchical answers; CoralNet's cells do not change.

    Column order as CoralNet exports: ``Name``, metadata columns (any column of ``df``
    that is not a normalised annotation column, in ``df`` order), ``Row``, ``Column``,
    the label column (``label_header``, else ``df.attrs['label_column']``, else
    ``Label``), ``Label ID`` if ``df`` has ``label_id``, ``Long Label`` if ``df`` has
    ``long_label``, ``Annotator,Date annotated`` if
    either has a value, and ``Machine suggestion K,Machine confidence K`` for K = 1..5 if
    any suggestion has a value. Confidences are 0-1 fractions in ``df``, written as integer
    percents (rounded half up). A frame read from a points-only file (no label column,
    no labels) is written back as ``Name,Row,Column``.
    """
    missing = [c for c in ("image", "row", "column") if c not in df.columns]
    if missing:
        raise InputError(f"annotations frame lacks column(s) {', '.join(missing)}")
    out: dict[str, pd.Series] = {"Name": blank(df["image"])}
    metadata = [c for c in df.columns if c not in _CORE and not str(c).startswith("machine_")]
    for c in metadata:
        out[str(c)] = blank(df[c])
    for c, header in (("row", "Row"), ("column", "Column")):
        values = pd.to_numeric(df[c], errors="raise")
        if values.isna().any() or (values < 0).any() or (values != np.floor(values)).any():
            raise InputError(f"{c} must hold non-negative integers", value=c)
        out[header] = values.astype(np.int64).astype("string")
    points_only = (
        label_header is None
        and df.attrs.get("label_column", "") is None
        and "label" in df.columns
        and df["label"].isna().all()
    )
    if "label" in df.columns and not points_only:
        header = label_header or df.attrs.get("label_column") or "Label"
        out[header] = blank(df["label"])
    if "label_id" in df.columns:
        out["Label ID"] = blank(df["label_id"])
    if "long_label" in df.columns:
        out[LONG_LABEL] = blank(df["long_label"])
    has_annotator = "annotator" in df.columns and df["annotator"].notna().any()
    has_date = "date_annotated" in df.columns and df["date_annotated"].notna().any()
    if has_annotator or has_date:
        empty = pd.Series("", index=df.index, dtype="string")
        out["Annotator"] = blank(df["annotator"]) if "annotator" in df.columns else empty
        out["Date annotated"] = (
            format_dates(df["date_annotated"]) if "date_annotated" in df.columns else empty
        )
    for k in _suggestion_numbers(df):
        suggestion = df.get(f"machine_suggestion_{k}")
        confidence = df.get(f"machine_confidence_{k}")
        out[f"Machine suggestion {k}"] = (
            blank(suggestion) if suggestion is not None else pd.Series("", index=df.index)
        )
        if confidence is None:
            out[f"Machine confidence {k}"] = pd.Series("", index=df.index)
            continue
        conf = pd.to_numeric(confidence, errors="raise").astype("float64")
        if ((conf < 0) | (conf > 1)).any():
            raise InputError(
                f"machine_confidence_{k} must be a 0-1 fraction", value=f"machine_confidence_{k}"
            )
        percent = np.floor(conf * 100 + 0.5)
        out[f"Machine confidence {k}"] = blank(percent.astype("Int64"))
    if extra is not None:
        for column in extra.columns:
            if str(column) in out:
                raise InputError(f"extra column {column!r} is one of CoralNet's", value=column)
            out[str(column)] = pd.Series(extra[column].to_numpy(), index=df.index)
    return write_csv(pd.DataFrame(out), path, escape_formulas=escape_formulas)
