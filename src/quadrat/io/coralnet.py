"""CoralNet's CSV formats: annotation exports/uploads, labelsets and percent-cover exports.

Read leniently (what CoralNet and its users actually produce: a leading pandas index
column, ``Label``/``Label code``/``Label ID`` headers, renamed aux columns, empty optional
columns), write exactly what CoralNet exports, and fail with the file, line and value at
fault. Everything is vectorised with pandas: 100k annotation rows parse in well under a
second. Column contracts are documented in ``docs/formats.md``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from quadrat.errors import CsvFormatError, InputError, UnknownLabelError
from quadrat.io.atomic import atomic_file

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

#: CoralNet exports the machine's top 5 suggestions per point.
N_SUGGESTIONS = 5

#: Fixed leading columns of a percent-cover table / CoralNet's image-covers export.
COVER_COLUMNS: tuple[str, ...] = ("Image ID", "Image name", "Annotation status", "Points")
ALL_IMAGES = "ALL IMAGES"

_LABEL_HEADERS = ("label code", "label", "label id")  # preference order
_SUGGESTION_RE = re.compile(r"^machine (suggestion|confidence) (\d+)$")
_INT_RE = r"\d{1,18}"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"
_UNNAMED_RE = re.compile(r"^Unnamed: \d+$")

#: Normalised annotation columns that are not metadata (everything else is).
_CORE = {"image", "row", "column", "label", "label_id", "annotator", "date_annotated", "line"}


# --------------------------------------------------------------------------- reading


def _key(header: str) -> str:
    """Case-, space- and underscore-insensitive form of a header cell."""
    return re.sub(r"[\s_]+", " ", str(header).strip().lower())


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CsvFormatError("file not found", path=path) from exc
    except OSError as exc:
        raise CsvFormatError(f"cannot read file: {exc}", path=path) from exc
    if not data.strip():
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path)
    if b"\x00" in data[:65536]:
        raise CsvFormatError("not a CSV file (binary content)", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"not a UTF-8 text CSV (undecodable byte at offset {exc.start})", path=path
        ) from exc


def _record_lines(text: str) -> np.ndarray | None:
    """1-based first line of every non-blank record, or None when that is just 1..n.

    Only files with blank lines or quoted line breaks need this; it is a vectorised scan
    of newline positions, skipping those inside quoted fields.
    """
    body = text.rstrip("\r\n")
    quoted_breaks = '"' in body  # a quoted field may hold a line break
    blank_lines = "\n\n" in body or "\n\r\n" in body or body.startswith(("\n", "\r\n"))
    if not quoted_breaks and not blank_lines:
        return None
    encoded = body.encode("utf-8")
    buffer = np.frombuffer(encoded, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == 10)
    separators = newlines
    if quoted_breaks:
        spans = np.array(
            [m.span() for m in re.finditer(rb'"(?:[^"]|"")*"', encoded)], dtype=np.int64
        ).reshape(-1, 2)
        if len(spans):
            k = np.searchsorted(spans[:, 0], newlines, side="right") - 1
            inside = (k >= 0) & (newlines < spans[np.clip(k, 0, None), 1])
            separators = newlines[~inside]
    record_starts = np.r_[0, separators + 1]
    line_of = np.asarray(np.searchsorted(newlines, record_starts)) + 1  # newlines before, + 1
    # Drop blank records (an empty line: the record starts at a newline or CR LF).
    padded = np.r_[buffer, np.uint8(10)]
    first = padded[record_starts]
    second = padded[np.minimum(record_starts + 1, len(padded) - 1)]
    blank = (first == 10) | ((first == 13) & (second == 10))
    return line_of[~blank].astype(np.int64)


def _parse_arrow(text: str) -> pd.DataFrame | None:
    """Fast path: pyarrow's CSV reader, every cell a string. None if pyarrow objects."""
    try:
        n_fields = len(next(csv.reader(io.StringIO(text))))
    except (csv.Error, StopIteration):
        return None
    names = [f"f{i}" for i in range(n_fields)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def _parse_pandas(text: str, path: Path) -> pd.DataFrame:
    """Slow, exact path: pandas' C parser, with line-numbered errors."""
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype="string[pyarrow]",
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            index_col=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path) from exc
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = (int(g) for g in match.groups())
            raise CsvFormatError(
                f"row has {saw} fields but the header has {expected}", path=path, line=line
            ) from exc
        raise CsvFormatError(f"not a valid CSV: {exc}", path=path) from exc
    return raw.fillna("")


def _read_raw(path: Path) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Parse a CSV into (string cells, header cells, 1-based line number of each row).

    Every cell stays a string ("" for empty); blank lines and rows of empty cells are
    dropped; columns with an empty header (a leading pandas index column) are dropped.
    """
    text = _decode(path)
    raw = _parse_arrow(text)
    if raw is None:
        raw = _parse_pandas(text, path)
    lines = _record_lines(text)
    if lines is None or len(lines) != len(raw):
        lines = np.arange(1, len(raw) + 1, dtype=np.int64)

    header = [str(h).strip() for h in raw.iloc[0].tolist()]
    body = raw.iloc[1:]
    body_lines = lines[1:]
    body.columns = range(body.shape[1])
    blank = np.ones(len(body), dtype=bool)
    for column in body.columns:
        blank &= pc.equal(pa.array(body[column]), "").to_numpy(zero_copy_only=False)
    if blank.any():
        body = body.loc[~blank]
        body_lines = body_lines[~blank]
    keep = [i for i, h in enumerate(header) if h != "" and not _UNNAMED_RE.match(h)]
    body = body.iloc[:, keep]
    header = [header[i] for i in keep]
    body.columns = header
    body = body.reset_index(drop=True)
    return body, header, body_lines


def _fail_first(
    bad: np.ndarray, values: pd.Series, lines: np.ndarray, path: Path, message: str
) -> None:
    """Raise CsvFormatError for the first flagged row (message may use {value})."""
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    value = values.iloc[i]
    more = int(bad.sum()) - 1
    suffix = f" ({more} more such rows)" if more else ""
    raise CsvFormatError(
        message.format(value=repr(value)) + suffix, path=path, line=int(lines[i]), value=value
    )


def _strings(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def _text(series: pd.Series) -> pd.Series:
    """Stripped strings with empty cells as <NA> (pyarrow compute: no Python loop)."""
    arr = pc.utf8_trim_whitespace(pa.array(series, type=pa.large_string(), from_pandas=True))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, type=arr.type), arr)
    return _strings(arr, series.index)


def _mask(result: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)


def _nonneg_int(series: pd.Series, header: str, lines: np.ndarray, path: Path) -> pd.Series:
    s = _text(series)
    arr = pa.array(s)
    _fail_first(
        _mask(pc.is_null(arr)), s, lines, path, f"{header} is empty (every point needs one)"
    )
    ok = _mask(pc.match_substring_regex(arr, r"^\d{1,18}$"))
    _fail_first(~ok, s, lines, path, f"{header} must be a non-negative integer, got {{value}}")
    values = pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)
    return pd.Series(values.astype(np.int64), index=series.index)


def _floats(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for blanks, mask of non-blank cells that are not numbers)."""
    arr = pa.array(series)
    present = ~_mask(pc.is_null(arr))
    try:
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), np.zeros(len(series), dtype=bool)
    except pa.ArrowInvalid:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return values, present & np.isnan(values)


def _dates(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps, parsing each distinct string once (exports repeat them a lot)."""
    arr = pa.array(series)
    uniques = pc.unique(pc.drop_null(arr))
    parsed = pd.to_datetime(
        pd.Series(uniques.to_pylist(), dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    position = pc.index_in(arr, value_set=uniques).to_numpy(zero_copy_only=False)
    position = np.where(pd.isna(position), -1, position).astype(np.int64)
    lookup = np.r_[parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns")]
    values = pd.Series(lookup[position], index=series.index).dt.tz_localize("UTC")
    bad = (position >= 0) & pd.isna(values).to_numpy()
    return values, bad


def read_annotations_csv(path: str | Path) -> pd.DataFrame:
    """Read a CoralNet annotation export or upload CSV into a normalised frame.

    Columns: ``image`` (string), ``row``/``column`` (int64), ``label`` (string, <NA> when
    blank or when the file has no label column), ``label_id`` (only when a ``Label ID``
    column accompanies a ``Label code``/``Label`` column), ``annotator`` (string),
    ``date_annotated`` (UTC datetime), the metadata columns under their CoralNet names
    (strings), ``machine_suggestion_K``/``machine_confidence_K`` (confidence as a 0-1
    fraction) when present, and ``line`` (1-based line in the file; header = 1).
    ``df.attrs``: ``path``, ``label_column`` (the header the labels came from, or None),
    ``metadata_columns``.
    """
    path = Path(path)
    body, header, lines = _read_raw(path)
    keys = [_key(h) for h in header]

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

    out: dict[str, pd.Series] = {}
    image = _text(body[seen["name"]])
    _fail_first(image.isna().to_numpy(), image, lines, path, "Name is empty")
    out["image"] = image
    out["row"] = _nonneg_int(body[seen["row"]], "Row", lines, path)
    out["column"] = _nonneg_int(body[seen["column"]], "Column", lines, path)

    label_key = next((k for k in _LABEL_HEADERS if k in seen), None)
    label_column = seen[label_key] if label_key else None
    if label_key is None:
        out["label"] = pd.Series(pd.NA, index=body.index, dtype="string")
    else:
        out["label"] = _text(body[seen[label_key]])
        if label_key != "label id" and "label id" in seen:
            out["label_id"] = _text(body[seen["label id"]])

    out["annotator"] = (
        _text(body[seen["annotator"]])
        if "annotator" in seen
        else pd.Series(pd.NA, index=body.index, dtype="string")
    )
    if "date annotated" in seen:
        raw_dates = _text(body[seen["date annotated"]])
        dates, bad_dates = _dates(raw_dates)
        _fail_first(
            bad_dates,
            raw_dates,
            lines,
            path,
            "Date annotated is not a date-time, got {value}",
        )
        out["date_annotated"] = dates
    else:
        out["date_annotated"] = pd.Series(pd.NaT, index=body.index, dtype="datetime64[ns, UTC]")

    used = {"name", "row", "column", "annotator", "date annotated"}
    if label_key:
        used.add(label_key)
        if "label_id" in out:
            used.add("label id")

    suggestions: dict[int, dict[str, str]] = {}
    for h, k in zip(header, keys, strict=True):
        match = _SUGGESTION_RE.match(k)
        if match:
            suggestions.setdefault(int(match.group(2)), {})[match.group(1)] = h
            used.add(k)

    metadata = [h for h, k in zip(header, keys, strict=True) if k not in used]
    for h in metadata:
        out[h] = _text(body[h])

    for n in sorted(suggestions):
        cols = suggestions[n]
        if "suggestion" in cols:
            out[f"machine_suggestion_{n}"] = _text(body[cols["suggestion"]])
        if "confidence" in cols:
            raw_conf = _text(body[cols["confidence"]])
            conf, bad = _floats(raw_conf)
            with np.errstate(invalid="ignore"):
                bad |= (conf < 0) | (conf > 100)
            _fail_first(
                bad, raw_conf, lines, path, f"{cols['confidence']} must be 0-100, got {{value}}"
            )
            out[f"machine_confidence_{n}"] = pd.Series(conf / 100.0, index=body.index)

    out["line"] = pd.Series(lines, index=body.index, dtype="int64")
    frame = pd.DataFrame(out)
    frame.attrs.update(path=str(path), label_column=label_column, metadata_columns=list(metadata))
    return frame


def read_labelset_csv(path: str | Path) -> pd.DataFrame:
    """Read a labelset: columns ``label_id`` (Int64, <NA> if absent), ``name``,
    ``short_code``, ``functional_group`` (strings, <NA> if absent).

    Accepts CoralNet's labelset export (``Label ID,Short Code``), the Moorea form
    (``,Label_ID,Label_URL,Name,Short_Code,Functional_Group``) and CoralNet's global label
    list (``,Label ID,Name,URL,Functional Group,Popularity %,Short Code,...``); header
    case, spaces and underscores do not matter. Short codes must be unique
    (case-insensitively, as CoralNet matches them).
    """
    path = Path(path)
    body, header, lines = _read_raw(path)
    by_key = {_key(h).replace(" ", "_"): h for h in header}
    if "short_code" not in by_key:
        raise CsvFormatError(
            f"missing a Short Code column; found {', '.join(header) or 'none'} "
            "(CoralNet's labelset form: Label ID,Short Code)",
            path=path,
            line=1,
        )
    n = len(body)
    out: dict[str, pd.Series] = {}
    if "label_id" in by_key:
        raw_id = _text(body[by_key["label_id"]])
        ok = raw_id.str.fullmatch(_INT_RE).to_numpy(dtype=bool, na_value=False)
        _fail_first(
            (raw_id.notna() & ~ok).to_numpy(),
            raw_id,
            lines,
            path,
            "Label ID must be a non-negative integer, got {value}",
        )
        out["label_id"] = raw_id.astype("Int64")
    else:
        out["label_id"] = pd.Series(pd.NA, index=body.index, dtype="Int64")
    for column in ("name", "short_code", "functional_group"):
        out[column] = (
            _text(body[by_key[column]])
            if column in by_key
            else pd.Series(pd.NA, index=body.index, dtype="string")
        )
    codes = out["short_code"]
    _fail_first(codes.isna().to_numpy(), codes, lines, path, "Short Code is empty")
    dup = codes.str.lower().duplicated().to_numpy()
    _fail_first(
        dup, codes, lines, path, "duplicate short code {value} (codes are case-insensitive)"
    )
    ids = out["label_id"]
    dup_id = (ids.notna() & ids.duplicated()).to_numpy()
    _fail_first(dup_id, ids.astype("string"), lines, path, "duplicate Label ID {value}")
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    frame.attrs["path"] = str(path)
    return frame


def resolve_labels(
    values: pd.Series,
    labelset: pd.DataFrame,
    *,
    path: str | Path | None = None,
    lines: Sequence[int] | np.ndarray | pd.Series | None = None,
) -> pd.Series:
    """Map labels given as short code, name or label id to the labelset's short codes.

    Matching order per value: short code (case-insensitive, as CoralNet), then name
    (case-insensitive, exact otherwise), then label id. <NA> stays <NA>. Unknown values
    raise UnknownLabelError naming the first few values and their lines.
    """
    codes = labelset["short_code"].astype("string")
    lookup: dict[str, str] = {}
    # Lowest priority first so that higher priorities overwrite.
    if "label_id" in labelset:
        for label_id, code in zip(labelset["label_id"], codes, strict=True):
            if pd.notna(label_id):
                lookup[str(int(label_id))] = str(code)
    if "name" in labelset:
        names = labelset["name"].astype("string").str.strip().str.lower()
        unique_names = ~names.duplicated(keep=False)
        for name, code, ok in zip(names, codes, unique_names, strict=True):
            if pd.notna(name) and ok:
                lookup[str(name)] = str(code)
    for code in codes:
        lookup[str(code).lower()] = str(code)

    text = values.astype("string").str.strip()
    uniques = text.dropna().unique()
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for value in uniques:
        key = str(value).lower()
        if key in lookup:
            mapping[value] = lookup[key]
            continue
        if key.isdigit() and str(int(key)) in lookup:  # "074" -> label id 74
            mapping[value] = lookup[str(int(key))]
            continue
        unknown.append(value)
    if unknown:
        unknown_set = set(unknown)
        mask = text.isin(unknown_set).to_numpy(dtype=bool, na_value=False)
        positions = np.flatnonzero(mask)
        line_values = np.asarray(lines) if lines is not None else None
        shown = []
        first_line = None
        seen_values: set[str] = set()
        for pos in positions:
            value = str(text.iloc[pos])
            if value in seen_values:
                continue
            seen_values.add(value)
            where = ""
            if line_values is not None:
                line_no = int(line_values[pos])
                first_line = first_line if first_line is not None else line_no
                where = f" (line {line_no})"
            shown.append(f"{value!r}{where}")
            if len(shown) == 5:
                break
        more = len(unknown_set) - len(shown)
        extra = f" and {more} more" if more > 0 else ""
        raise UnknownLabelError(
            f"{len(unknown_set)} label(s) not in the labelset (by short code, name or id): "
            f"{', '.join(shown)}{extra}",
            path=path,
            line=first_line,
            value=sorted(unknown_set)[:5],
        )
    result = text.map(mapping).astype("string")
    result.name = values.name
    return result


# --------------------------------------------------------------------------- writing


def _atomic_write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write to a temporary file beside ``path`` then rename: readers never see half a file."""
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return Path(path)


def _blank(series: pd.Series) -> pd.Series:
    """Strings for CSV cells, with missing values as empty cells."""
    return series.astype("string").fillna("")


def _format_dates(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        s = series
        s = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return s.dt.strftime(_DATE_FORMAT).astype("string").fillna("")
    return _blank(series)


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
    df: pd.DataFrame, path: str | Path, *, label_header: str | None = None
) -> Path:
    """Write annotations in CoralNet's export form (atomically).

    Column order as CoralNet exports: ``Name``, metadata columns (any column of ``df``
    that is not a normalised annotation column, in ``df`` order), ``Row``, ``Column``,
    the label column (``label_header``, else ``df.attrs['label_column']``, else
    ``Label``), ``Label ID`` if ``df`` has ``label_id``, ``Annotator,Date annotated`` if
    either has a value, and ``Machine suggestion K,Machine confidence K`` for K = 1..5 if
    any suggestion has a value. Confidences are 0-1 fractions in ``df``, written as integer
    percents (rounded half up). A frame read from a points-only file (no label column,
    no labels) is written back as ``Name,Row,Column``.
    """
    missing = [c for c in ("image", "row", "column") if c not in df.columns]
    if missing:
        raise InputError(f"annotations frame lacks column(s) {', '.join(missing)}")
    out: dict[str, pd.Series] = {"Name": _blank(df["image"])}
    metadata = [c for c in df.columns if c not in _CORE and not str(c).startswith("machine_")]
    for c in metadata:
        out[str(c)] = _blank(df[c])
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
        out[header] = _blank(df["label"])
    if "label_id" in df.columns:
        out["Label ID"] = _blank(df["label_id"])
    has_annotator = "annotator" in df.columns and df["annotator"].notna().any()
    has_date = "date_annotated" in df.columns and df["date_annotated"].notna().any()
    if has_annotator or has_date:
        empty = pd.Series("", index=df.index, dtype="string")
        out["Annotator"] = _blank(df["annotator"]) if "annotator" in df.columns else empty
        out["Date annotated"] = (
            _format_dates(df["date_annotated"]) if "date_annotated" in df.columns else empty
        )
    for k in _suggestion_numbers(df):
        suggestion = df.get(f"machine_suggestion_{k}")
        confidence = df.get(f"machine_confidence_{k}")
        out[f"Machine suggestion {k}"] = (
            _blank(suggestion) if suggestion is not None else pd.Series("", index=df.index)
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
        out[f"Machine confidence {k}"] = _blank(percent.astype("Int64"))
    return _atomic_write_csv(pd.DataFrame(out), path)


def write_labelset_csv(labelset: pd.DataFrame, path: str | Path) -> Path:
    """Write a labelset in CoralNet's export form ``Label ID,Short Code`` (sorted by code),
    followed by ``Name`` and ``Functional Group`` when the labelset has them."""
    if "short_code" not in labelset.columns:
        raise InputError("labelset frame lacks a short_code column")
    ordered = labelset.assign(_k=labelset["short_code"].astype("string").str.lower())
    ordered = ordered.sort_values("_k", kind="stable")
    ids = ordered["label_id"] if "label_id" in ordered else pd.Series(pd.NA, index=ordered.index)
    out: dict[str, pd.Series] = {
        "Label ID": _blank(ids.astype("Int64")),
        "Short Code": _blank(ordered["short_code"]),
    }
    for column, header in (("name", "Name"), ("functional_group", "Functional Group")):
        if column in ordered and ordered[column].notna().any():
            out[header] = _blank(ordered[column])
    return _atomic_write_csv(pd.DataFrame(out), path)


# --------------------------------------------------------------------------- covers


def _label_order(labelset: pd.DataFrame) -> list[str]:
    """CoralNet orders cover columns by functional group, then short code."""
    frame = pd.DataFrame(
        {
            "group": labelset.get(
                "functional_group", pd.Series(pd.NA, index=labelset.index)
            ).astype("string"),
            "code": labelset["short_code"].astype("string"),
        }
    )
    frame = frame.assign(
        g=frame["group"].fillna("\uffff").str.lower(), c=frame["code"].str.lower()
    ).sort_values(["g", "c"], kind="stable")
    return [str(c) for c in frame["code"]]


def cover_table(
    annotations: pd.DataFrame,
    labelset: pd.DataFrame | None = None,
    *,
    label_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-image percent cover, as CoralNet's "image covers" export computes it.

    Input: one row per point with ``image_name``, ``label`` (short code; <NA> = point not
    annotated), optional ``image_id`` (defaults to the name) and optional ``status``
    (``confirmed``/``unconfirmed`` per point, case-insensitive; default confirmed).

    As CoralNet: images with any unannotated point are left out; an image is
    "Unconfirmed" if any point is unconfirmed, else "Confirmed"; cover = label count /
    annotated points x 100. Label columns: ``label_order``, else the labelset's codes by
    functional group then code (all of them, zeros included), else the labels seen, sorted.
    Output columns: ``Image ID, Image name, Annotation status, Points, <labels...>``
    (float percents), images sorted by name.
    """
    if "image_name" not in annotations.columns or "label" not in annotations.columns:
        raise InputError("cover_table needs columns image_name and label")
    frame = pd.DataFrame(
        {
            "name": annotations["image_name"].astype("string"),
            "id": annotations["image_id"]
            if "image_id" in annotations
            else annotations["image_name"],
            "label": annotations["label"].astype("string"),
            "status": (
                annotations["status"].astype("string").str.strip().str.lower()
                if "status" in annotations
                else pd.Series("confirmed", index=annotations.index, dtype="string")
            ),
        }
    )
    bad_status = frame["status"].notna() & ~frame["status"].isin(["confirmed", "unconfirmed"])
    if bad_status.any():
        value = frame["status"][bad_status].iloc[0]
        raise InputError(f"status must be 'confirmed' or 'unconfirmed', got {value!r}", value=value)
    if label_order is not None:
        labels = [str(x) for x in label_order]
    elif labelset is not None:
        labels = _label_order(labelset)
    else:
        labels = sorted(frame["label"].dropna().unique().tolist(), key=lambda s: (s.lower(), s))
    unknown = set(frame["label"].dropna().unique().tolist()) - set(labels)
    if unknown:
        raise UnknownLabelError(
            f"label(s) not among the cover columns: {', '.join(sorted(unknown)[:5])}",
            value=sorted(unknown)[:5],
        )

    per_image = frame.groupby("name", sort=True, dropna=False).agg(
        id=("id", "first"),
        points=("label", "size"),
        annotated=("label", "count"),
        unconfirmed=("status", lambda s: bool((s == "unconfirmed").any())),
    )
    per_image = per_image[per_image["annotated"] == per_image["points"]]
    counts = (
        frame[frame["name"].isin(per_image.index)]
        .groupby(["name", "label"], sort=False)
        .size()
        .unstack("label", fill_value=0)
        .reindex(index=per_image.index, columns=labels, fill_value=0)
    )
    percents = counts.div(per_image["annotated"], axis=0) * 100.0
    table = pd.DataFrame(
        {
            "Image ID": per_image["id"].to_numpy(),
            "Image name": per_image.index.astype(str),
            "Annotation status": np.where(per_image["unconfirmed"], "Unconfirmed", "Confirmed"),
            "Points": per_image["points"].astype(np.int64).to_numpy(),
        }
    )
    for label in labels:
        table[label] = percents[label].astype("float64").to_numpy()
    return table


def _pct(values: pd.Series) -> pd.Series:
    """CoralNet's cover formatting: always 3 decimals, never '-0.000'."""
    text = values.map(lambda x: format(float(x), ".3f"))
    return text.where(text != "-0.000", "0.000")


def write_percent_cover_csv(cover: pd.DataFrame, path: str | Path) -> Path:
    """Write CoralNet's image-covers export (atomically).

    ``cover`` is a ``cover_table`` result: ``Image ID, Image name, Annotation status,
    Points`` then one column of percents per label. Percents are written with 3 decimals;
    when there is more than one image, a final ``ALL IMAGES`` row holds the mean of the
    per-image covers (each image weighs the same, whatever its point count).
    """
    missing = [c for c in COVER_COLUMNS if c not in cover.columns]
    if missing:
        raise InputError(f"cover table lacks column(s) {', '.join(missing)}")
    labels = [c for c in cover.columns if c not in COVER_COLUMNS]
    out = pd.DataFrame(
        {
            "Image ID": _blank(cover["Image ID"]),
            "Image name": _blank(cover["Image name"]),
            "Annotation status": _blank(cover["Annotation status"]),
            "Points": _blank(cover["Points"].astype("Int64")),
        }
    )
    for label in labels:
        out[str(label)] = _pct(cover[label].astype("float64"))
    if len(cover) > 1:
        summary = {c: "" for c in COVER_COLUMNS}
        summary["Image ID"] = ALL_IMAGES
        for label in labels:
            mean = 100.0 * (cover[label].astype("float64") / 100.0).sum() / len(cover)
            summary[str(label)] = _pct(pd.Series([mean])).iloc[0]
        out = pd.concat([out, pd.DataFrame([summary])], ignore_index=True)
    return _atomic_write_csv(out, path)


def read_percent_cover_csv(path: str | Path) -> pd.DataFrame:
    """Read an image-covers export back: the per-image rows as ``cover_table`` returns them.

    The ``ALL IMAGES`` row, if any, is removed and kept in ``attrs['all_images']``
    (a dict of label to percent).
    """
    path = Path(path)
    body, header, lines = _read_raw(path)
    missing = [c for c in COVER_COLUMNS if c not in header]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(header)}",
            path=path,
            line=1,
        )
    labels = [h for h in header if h not in COVER_COLUMNS]
    is_all = (body["Image ID"] == ALL_IMAGES).to_numpy()
    summary = body[is_all]
    body, lines = body[~is_all].reset_index(drop=True), lines[~is_all]
    table = pd.DataFrame(
        {
            "Image ID": body["Image ID"],
            "Image name": body["Image name"],
            "Annotation status": body["Annotation status"],
            "Points": _nonneg_int(body["Points"], "Points", lines, path),
        }
    )
    for label in labels:
        values = pd.to_numeric(body[label].str.strip(), errors="coerce")
        _fail_first(
            values.isna().to_numpy(),
            body[label],
            lines,
            path,
            f"{label} is not a number: {{value}}",
        )
        table[label] = values.astype("float64")
    table.attrs["path"] = str(path)
    if len(summary):
        table.attrs["all_images"] = {label: float(summary[label].iloc[0]) for label in labels}
    return table
