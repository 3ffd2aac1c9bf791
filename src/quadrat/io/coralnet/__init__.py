"""CoralNet's CSV formats: annotation exports/uploads, labelsets and percent-cover exports.

Read leniently (what CoralNet and its users actually produce: a leading pandas index
column, ``Label``/``Label code``/``Label ID`` headers, renamed aux columns, empty optional
columns), write exactly what CoralNet exports, and fail with the file, line and value at
fault. Parsing is :mod:`quadrat.io.csv` (every cell a string, exact line numbers);
writing goes through :mod:`quadrat.io.atomic`. Column contracts are in
``docs/formats.md``.

- :mod:`~quadrat.io.coralnet.annotations`: ``read_annotations_csv``, ``write_annotations_csv``
- :mod:`~quadrat.io.coralnet.labelsets`: ``read_labelset`` (CSV or Toolbox JSON),
  ``read_labelset_csv``, ``read_labelset_json``, ``write_labelset_csv``, ``resolve_labels``
- :mod:`~quadrat.io.coralnet.covers`: ``cover_table``, ``write_percent_cover_csv``,
  ``read_percent_cover_csv``
"""

from __future__ import annotations

from quadrat.io.coralnet.annotations import (
    LONG_LABEL,
    METADATA_COLUMNS,
    N_SUGGESTIONS,
    read_annotations_csv,
    write_annotations_csv,
)
from quadrat.io.coralnet.covers import (
    ALL_IMAGES,
    COVER_COLUMNS,
    cover_table,
    read_percent_cover_csv,
    write_percent_cover_csv,
)
from quadrat.io.coralnet.labelsets import (
    read_labelset,
    read_labelset_csv,
    read_labelset_json,
    resolve_labels,
    write_labelset_csv,
)

__all__ = [
    "ALL_IMAGES",
    "COVER_COLUMNS",
    "LONG_LABEL",
    "METADATA_COLUMNS",
    "N_SUGGESTIONS",
    "cover_table",
    "read_annotations_csv",
    "read_labelset",
    "read_labelset_csv",
    "read_labelset_json",
    "read_percent_cover_csv",
    "resolve_labels",
    "write_annotations_csv",
    "write_labelset_csv",
    "write_percent_cover_csv",
]
