"""Reads behind the portable classifier file: a source's labels with their row ids, an
extractor's stored record, and the precision its features are stored in.

:mod:`quadrat.workflow.classifiers` exports these with a classifier and checks them on
import, so another project can rebuild the same labels and features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quadrat.store.schema import ExtractorRecord, FeatureBlock, Image, Label


@dataclass(frozen=True)
class LabelRow:
    """One label of a source with its row id (the id its classifiers predict)."""

    id: int
    name: str
    short_code: str
    functional_group: str | None
    coralnet_id: int | None


def label_rows(session: Session, source_id: int, *, by_code: bool = False) -> list[LabelRow]:
    """The source's labels with their row ids, by row id (or by short code: the UI's legend)."""
    rows = session.execute(
        select(Label.id, Label.name, Label.short_code, Label.functional_group, Label.coralnet_id)
        .where(Label.source_id == source_id)
        .order_by(Label.short_code if by_code else Label.id)
    ).all()
    return [
        LabelRow(int(i), str(n), str(c), g, None if k is None else int(k)) for i, n, c, g, k in rows
    ]


@dataclass(frozen=True)
class ExtractorInfo:
    """A stored extractor record: its key, name, feature size and full configuration."""

    key: str
    name: str
    feature_dim: int
    config: dict[str, Any] = field(default_factory=dict)


def extractor_record(session: Session, key: str) -> ExtractorInfo | None:
    """The extractor stored under ``key``, or None."""
    record = session.get(ExtractorRecord, key)
    if record is None:
        return None
    return ExtractorInfo(
        record.key, record.name, int(record.feature_dim), dict(record.config or {})
    )


def stored_feature_dtype(session: Session, source_id: int, extractor_key: str) -> str | None:
    """The precision the source's features from this extractor are stored in; None: none."""
    dtype = session.scalar(
        select(FeatureBlock.dtype)
        .join(Image, Image.id == FeatureBlock.image_id)
        .where(Image.source_id == source_id, FeatureBlock.extractor_key == extractor_key)
        .limit(1)
    )
    return None if dtype is None else str(dtype)
