"""Download the images a metadata table lists by URL, into tar shards or a folder tree.

Why it is built this way:

- **Shards** (WebDataset convention, see :mod:`quadrat.datasets.shards`) are what the
  self-supervised pretraining streams; a **folder tree** ``<out>/<dataset>/<site>/<image>``
  is BenthicNet's on-disk layout. Both are written atomically (:mod:`quadrat.io.atomic`),
  so a killed run never leaves a file that looks complete but is not.
- **Resume** trusts what is on disk: completed shards (their member names) or tree files;
  the manifest adds each image's checksum and size. Failed images are tried again.
- **Concurrency** is a thread pool with a bounded window of requests in flight.
- **Retries** with exponential back-off and jitter on transient failures only.

Modules: :mod:`.options` (``DownloadOptions``, the table check), :mod:`.http` (one GET,
retries, back-off), :mod:`.convert` (verify and shrink an image), :mod:`.manifest` (the
manifest and failure log), :mod:`.run` (``download_images``).
"""

from __future__ import annotations

from quadrat.datasets.download.convert import Fetched, convert, has_end_marker
from quadrat.datasets.download.http import (
    Failed,
    backoff_delay,
    fetch_image,
    fetch_once,
    try_image,
)
from quadrat.datasets.download.manifest import (
    FAILURE_COLUMNS,
    FAILURES_NAME,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    ImageRecord,
    read_manifest,
)
from quadrat.datasets.download.options import (
    REQUIRED_COLUMNS,
    DownloadOptions,
    Layout,
    Progress,
    Verify,
    prepare_table,
)
from quadrat.datasets.download.run import (
    LOCK_NAME,
    DownloadSummary,
    bounded_map,
    download_images,
    output_lock,
)
from quadrat.errors import FetchError
from quadrat.io.atomic import remove_stale_temporaries

__all__ = [
    "FAILURES_NAME",
    "FAILURE_COLUMNS",
    "LOCK_NAME",
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "REQUIRED_COLUMNS",
    "DownloadOptions",
    "DownloadSummary",
    "Failed",
    "FetchError",
    "Fetched",
    "ImageRecord",
    "Layout",
    "Progress",
    "Verify",
    "backoff_delay",
    "bounded_map",
    "convert",
    "download_images",
    "fetch_image",
    "fetch_once",
    "has_end_marker",
    "output_lock",
    "prepare_table",
    "read_manifest",
    "remove_stale_temporaries",
    "try_image",
]
