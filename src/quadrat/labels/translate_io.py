"""Label translation, files: source labels and annotations in, the reviewed mapping out and back.

:mod:`quadrat.labels.translate` proposes a CATAMI node per label; this module reads what
it works on and keeps what a person decides:

- :func:`read_source_labels`: the labels of a CoralNet labelset, a Squidle+ export, a
  name list or a folder of class folders, as :class:`SourceLabel`;
- :func:`read_annotations`: (image, label) per point from the same sources;
- :func:`write_mapping` / :func:`read_mapping`: the mapping table
  (:data:`MAPPING_COLUMNS`) a person reviews, written atomically and read back with every
  code checked against the tree and the line of a bad row named;
  :func:`shipped_mapping` reads the reviewed tables shipped with quadrat;
- :func:`read_vocabulary` / :func:`default_synonyms`: benthic terms -> CAAB codes.

CSV files are read through :mod:`quadrat.io.csv` (strings, exact line numbers).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from quadrat.errors import CsvFormatError, InputError
from quadrat.io.csv import header_key, read_csv
from quadrat.io.images import list_images
from quadrat.labels.catami import CatamiTree, normalise_code
from quadrat.labels.catami_io import default_catami, write_frame_atomic

if TYPE_CHECKING:
    import pandas as pd

SOURCE_KINDS: tuple[str, ...] = ("coralnet-labelset", "squidle", "names")
MAPPING_COLUMNS: tuple[str, ...] = (
    "source_label",
    "source_name",
    "caab_code",
    "catami_path",
    "kind",
    "score",
    "note",
)


@dataclass(frozen=True)
class SourceLabel:
    """One label of a source: the key annotations use, plus what helps to match it."""

    label: str
    name: str = ""
    group: str = ""

    @property
    def texts(self) -> list[str]:
        return [text for text in dict.fromkeys((self.name, self.label)) if text]


@cache
def default_synonyms() -> dict[str, str]:
    """The shipped vocabulary: benthic terms and genera -> CAAB code."""
    resource = resources.files("quadrat.labels").joinpath("data", "catami_synonyms.csv")
    with resources.as_file(resource) as file:
        return read_vocabulary(file)


def read_vocabulary(path: str | Path) -> dict[str, str]:
    """A vocabulary CSV (``term, caab_code[, note]``): a survey's own words for CATAMI nodes."""
    path = Path(path)
    frame = read_csv(path).frame
    for column in ("term", "caab_code"):
        if column not in frame.columns:
            raise CsvFormatError(f"missing column {column!r}", path=path)
    return {row.term: normalise_code(row.caab_code) for row in frame.itertuples() if row.term}


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """:func:`~quadrat.io.csv.header_key` -> the column as written ('Short Code',
    'Short_Code' and 'short code' are one key: CoralNet uses all three)."""
    return {header_key(c): str(c) for c in frame.columns}


def read_source_labels(path: str | Path, kind: str) -> list[SourceLabel]:
    """Labels of a source: a CoralNet labelset, a Squidle+ export, or plain names.

    ``names`` reads one name a line, a CSV's first column (with the csv module, which
    tolerates rows with a stray trailing comma that a table reader refuses as ragged), or
    a folder's sub-folder names (class folders).
    """
    path = Path(path)
    if kind not in SOURCE_KINDS:
        raise InputError(f"unknown source kind (choose {', '.join(SOURCE_KINDS)})", value=kind)
    if kind == "names":
        if path.is_dir():
            return [SourceLabel(p.name) for p in sorted(path.iterdir()) if p.is_dir()]
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not a text file of label names (not UTF-8 at byte {exc.start})", path=path
            ) from None
        if path.suffix.lower() == ".csv":  # first column under a header; stray commas ok
            rows = list(csv.reader(io.StringIO(text)))[1:]
            names = [SourceLabel(row[0].strip()) for row in rows if row and row[0].strip()]
        else:
            names = [SourceLabel(line.strip()) for line in text.splitlines() if line.strip()]
        if not names:
            raise InputError("no label names in this file", path=path)
        return names
    frame = read_csv(path).frame
    cols = _columns(frame)
    if kind == "coralnet-labelset":
        need = ("short code", "name")
        if any(c not in cols for c in need):
            raise CsvFormatError(
                "a CoralNet labelset needs 'Short Code' and 'Name' columns "
                f"(found: {', '.join(map(str, frame.columns))})",
                path=path,
            )
        group = cols.get("functional group")
        return [
            SourceLabel(
                str(row[cols["short code"]]).strip(),
                str(row[cols["name"]]).strip(),
                str(row[group]).strip() if group else "",
            )
            for _, row in frame.iterrows()
            if str(row[cols["short code"]]).strip()
        ]
    lineage = cols.get("label lineage names")
    if lineage is None:
        raise CsvFormatError("a Squidle+ export needs a 'label.lineage_names' column", path=path)
    names = frame[cols["label name"]] if "label name" in cols else frame[lineage]
    pairs = dict(zip(frame[lineage], names, strict=True))
    return [SourceLabel(str(k).strip(), str(v).strip()) for k, v in pairs.items() if str(k)]


def write_mapping(mapping: pd.DataFrame, path: str | Path) -> Path:
    """Write the table atomically (a reviewer's file is never half-written)."""
    return write_frame_atomic(mapping[list(MAPPING_COLUMNS)], path)


def read_mapping(path: str | Path, tree: CatamiTree | None = None) -> dict[str, str]:
    """A reviewed table -> {source label: CAAB code}; rows with no code are left out.

    Every code must name a node of the tree and every label appear once; the error names
    the line.
    """
    tree = tree or default_catami()
    path = Path(path)
    table = read_csv(path)
    for column in ("source_label", "caab_code"):
        if column not in table.frame.columns:
            raise CsvFormatError(f"missing column {column!r}", path=path)
    out: dict[str, str] = {}
    seen: set[str] = set()
    rows = zip(table.frame["source_label"], table.frame["caab_code"], strict=True)
    for line, (label, raw_code) in zip(table.lines.tolist(), rows, strict=True):
        if label in seen:
            raise CsvFormatError("source label listed twice", path=path, line=line, value=label)
        seen.add(label)
        code = normalise_code(raw_code)
        if not code:
            continue
        if code not in tree:
            raise CsvFormatError(
                f"caab_code {code!r} (for {label!r}) is not a node of the CATAMI tree",
                path=path,
                line=line,
                value=code,
            )
        out[label] = code
    return out


def shipped_mapping(name: str, tree: CatamiTree | None = None) -> dict[str, str]:
    """A reviewed mapping shipped with quadrat (``data/<name>_catami.csv``).

    ``seattle_rov``: the 25 class folders of the Seattle ROV patches, proposed by
    :func:`~quadrat.labels.translate.propose_mapping` and then reviewed by hand (``kind``
    'reviewed' marks the edits).
    """
    resource = resources.files("quadrat.labels").joinpath("data", f"{name}_catami.csv")
    if not resource.is_file():
        raise InputError(f"no shipped mapping named {name!r}", value=name)
    with resources.as_file(resource) as file:
        return read_mapping(file, tree)


def read_annotations(
    path: str | Path,
    kind: str,
    *,
    label_column: str | None = None,
    image_column: str | None = None,
) -> pd.DataFrame:
    """(image, label) per point from a CoralNet export, a Squidle+ export or class folders.

    Class folders give one point per image (:func:`quadrat.io.images.list_images`: image
    suffixes only, hidden files skipped), labelled with its folder's name.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        files = list_images(path, recursive=True)
        return pd.DataFrame(
            {
                "image": [str(p.relative_to(path)) for p in files],
                "label": [p.parent.name for p in files],
            }
        )
    defaults = {
        "coralnet-labelset": ("Label", "Name"),
        "squidle": ("label.lineage_names", "point.media.key"),
        "names": ("label", "image"),
    }
    if kind not in defaults:
        raise InputError(f"unknown source kind (choose {', '.join(defaults)})", value=kind)
    label_col = label_column or defaults[kind][0]
    image_col = image_column or defaults[kind][1]
    frame = read_csv(path).frame
    for column, param in ((label_col, "label_column"), (image_col, "image_column")):
        if column not in frame.columns:
            raise CsvFormatError(
                f"no column {column!r} (found: {', '.join(map(str, frame.columns))}); "
                f"name the column with {param}",
                path=path,
                value=column,
                param=param,
            )
    return pd.DataFrame({"image": frame[image_col], "label": frame[label_col]})


__all__ = [
    "MAPPING_COLUMNS",
    "SOURCE_KINDS",
    "SourceLabel",
    "default_synonyms",
    "read_annotations",
    "read_mapping",
    "read_source_labels",
    "read_vocabulary",
    "shipped_mapping",
    "write_mapping",
]
