"""The feature store: one compact binary block per (image, extractor).

Why blocks in the database rather than files: a block is written in the same transaction
that records it, so a killed extraction leaves whole blocks or nothing (no half-written
or orphaned files), the project stays one file, and loading is one query whose rows are
copied straight into a preallocated array.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from quadrat._util import chunked
from quadrat.errors import InputError, ProjectError
from quadrat.store.schema import ExtractorRecord, FeatureBlock, Image

#: Types features may be stored as; float16 halves the size with no measurable effect on
#: the classifiers (values are O(1) after the extractors' own scaling).
FEATURE_DTYPES = ("float16", "float32")

#: Above this many image ids, filter while reading rather than in SQL (bound-parameter caps).
_MAX_SQL_IDS = 30_000


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of many points, row ``i`` belonging to ``point_ids[i]``."""

    point_ids: np.ndarray  # int64, (n,)
    features: np.ndarray  # float16/float32, (n, dim)

    def __len__(self) -> int:
        return len(self.point_ids)


def record_extractor(
    session: Session, key: str, name: str, feature_dim: int, config: dict[str, Any]
) -> None:
    """Record an extractor's configuration once, so stored features say what made them."""
    record = session.get(ExtractorRecord, key)
    if record is None:
        session.add(ExtractorRecord(key=key, name=name, feature_dim=feature_dim, config=config))
    elif record.feature_dim != feature_dim:
        raise ProjectError(
            f"extractor {key!r} is stored with {record.feature_dim} dims, now gives {feature_dim}"
        )


def images_with_features(
    session: Session, extractor_key: str, image_ids: Iterable[int]
) -> set[int]:
    """Which of ``image_ids`` already have a block for this extractor."""
    found: set[int] = set()
    for chunk in chunked(list(image_ids)):  # stay under SQLite's bound-parameter limit
        found.update(
            session.scalars(
                select(FeatureBlock.image_id).where(
                    FeatureBlock.extractor_key == extractor_key,
                    FeatureBlock.image_id.in_(chunk),
                )
            )
        )
    return found


def write_block(
    session: Session,
    image_id: int,
    extractor_key: str,
    point_ids: np.ndarray,
    features: np.ndarray,
    dtype: str = "float16",
) -> None:
    """Store (or replace) one image's features for one extractor."""
    write_blocks(session, extractor_key, [(image_id, point_ids, features)], dtype=dtype)


def check_feature_dtype(dtype: str) -> None:
    """An InputError unless ``dtype`` is a stored feature type (:data:`FEATURE_DTYPES`)."""
    if dtype not in FEATURE_DTYPES:
        raise InputError(
            f"stored features are {' or '.join(FEATURE_DTYPES)}, not {dtype!r}",
            value=dtype,
            param="dtype",
        )


def write_blocks(
    session: Session,
    extractor_key: str,
    blocks: Sequence[tuple[int, np.ndarray, np.ndarray]],
    dtype: str = "float16",
) -> None:
    """Store (or replace) several images' ``(image_id, point_ids, features)`` at once.

    Every block is checked before anything is written; then one DELETE and one
    multi-row INSERT (Core, not the ORM's per-object flush, which cost ~10 ms a block).
    """
    check_feature_dtype(dtype)
    rows = []
    for image_id, point_ids, features in blocks:
        ids = np.ascontiguousarray(point_ids, dtype="<i8")
        if features.ndim != 2 or features.shape[0] != ids.shape[0]:
            raise ValueError(f"features {features.shape} do not match {ids.shape[0]} points")
        if not np.isfinite(features).all():
            raise ProjectError(f"image id {image_id}: extractor {extractor_key!r} gave NaN or inf")
        with np.errstate(over="ignore"):
            data = np.ascontiguousarray(features, dtype=np.dtype(dtype).newbyteorder("<"))
        if dtype == "float16" and not np.isfinite(data).all():
            raise ProjectError(
                f"image id {image_id}: features overflow float16; store them as float32"
            )
        rows.append(
            {
                "image_id": int(image_id),
                "extractor_key": extractor_key,
                "dtype": dtype,
                "n_points": int(ids.shape[0]),
                "dim": int(features.shape[1]),
                "point_ids": ids.tobytes(),
                "data": data.tobytes(),
            }
        )
    if not rows:
        return
    image_ids = [row["image_id"] for row in rows]
    for chunk in chunked(image_ids):  # SQLite's bound-parameter limit
        session.execute(
            delete(FeatureBlock).where(
                FeatureBlock.extractor_key == extractor_key, FeatureBlock.image_id.in_(chunk)
            )
        )
    session.execute(insert(FeatureBlock), rows)


def load_features(
    session: Session,
    extractor_key: str,
    *,
    source_id: int | None = None,
    image_ids: Iterable[int] | None = None,
    dtype: str = "float32",
) -> FeatureMatrix:
    """All stored features of a source (or of some images) for one extractor.

    ``dtype="stored"`` keeps the stored precision: float16 when every block is float16,
    else float32 (float32 blocks are never narrowed). Training and scoring take float16
    and convert only the part they work on, so this halves the loaded array (100,000 x
    1280 points: 244 MB instead of 488 MB) and every copy of it made before training.
    """
    filters = []
    if source_id is not None:
        filters.append(Image.source_id == source_id)
    wanted = None if image_ids is None else set(image_ids)
    if wanted is not None and len(wanted) <= _MAX_SQL_IDS:
        # Filter in the query, so blocks of other images are neither read nor counted.
        filters.append(FeatureBlock.image_id.in_(sorted(wanted)))
        wanted = None
    totals = session.execute(
        select(
            func.sum(FeatureBlock.n_points),
            func.max(FeatureBlock.dim),
            func.count(FeatureBlock.image_id).filter(FeatureBlock.dtype != "float16"),
        )
        .select_from(FeatureBlock)
        .join(Image, Image.id == FeatureBlock.image_id)
        .where(FeatureBlock.extractor_key == extractor_key, *filters)
    ).one()
    total, dim = int(totals[0] or 0), int(totals[1] or 0)
    if dtype == "stored":
        dtype = "float32" if totals[2] else "float16"
    point_ids = np.empty(total, dtype=np.int64)
    features = np.empty((total, dim), dtype=dtype)
    rows = session.execute(
        select(
            FeatureBlock.image_id,
            FeatureBlock.dtype,
            FeatureBlock.n_points,
            FeatureBlock.dim,
            FeatureBlock.point_ids,
            FeatureBlock.data,
        )
        .join(Image, Image.id == FeatureBlock.image_id)
        .where(FeatureBlock.extractor_key == extractor_key, *filters)
        .order_by(FeatureBlock.image_id)
        .execution_options(yield_per=256)
    )
    filled = 0
    for image_id, block_dtype, n, block_dim, ids_bytes, data_bytes in rows:
        if wanted is not None and image_id not in wanted:
            continue
        if block_dim != dim:
            raise ProjectError(
                f"image id {image_id}: stored features have {block_dim} dims, not {dim}"
            )
        point_ids[filled : filled + n] = np.frombuffer(ids_bytes, dtype="<i8")
        block = np.frombuffer(data_bytes, dtype=np.dtype(block_dtype).newbyteorder("<"))
        features[filled : filled + n] = block.reshape(n, dim)
        filled += n
    return FeatureMatrix(point_ids[:filled], features[:filled])
