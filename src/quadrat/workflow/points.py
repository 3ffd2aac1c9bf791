"""Points step: CoralNet-style point sets for images that have none."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from quadrat.errors import InputError
from quadrat.points import AnnotationArea, PointSpec
from quadrat.store import queries, writes

if TYPE_CHECKING:
    from quadrat.workflow.source import Source


def image_seed(name: str, seed: int) -> int:
    """The seed of one image's points: depends only on ``seed`` and the image's name.

    >>> image_seed("a.jpg", 0) == image_seed("a.jpg", 0) != image_seed("b.jpg", 0)
    True
    """
    return zlib.crc32(name.encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)


def image_points(
    spec: PointSpec, area: str | None, name: str, height: int, width: int, *, seed: int = 0
) -> np.ndarray:
    """One image's points ((N, 2) [row, column]) by ``spec`` inside the source's annotation
    ``area`` (CoralNet's stored form; None: the whole image), seeded by the image's name.
    An area that does not fit this image's size is an error naming the image."""
    try:
        bounds = None if area is None else AnnotationArea.parse(area, width=width, height=height)
        return spec.generate(height, width, seed=image_seed(name, seed), area=bounds)
    except InputError as exc:
        raise InputError(f"image {name!r} ({width}x{height}): {exc.message}", value=name) from exc


def generate_points(src: Source, spec: str | None = None, *, seed: int = 0) -> int:
    """Give every image of the source that has no points a CoralNet-style point set.

    Each image's points depend only on ``seed`` and the image's name, so rerunning (or
    adding images later) gives the same points for the same image. Points fall inside the
    source's annotation area when it has one. The first spec used becomes the source's
    default. Returns the number of points added.
    """
    with src.project.store.session() as session:
        info = queries.source_by_id(session, src.id)
        text = spec or info.point_spec
        if text is None:
            raise InputError(
                f"source {src.name!r} has no point spec; give one (e.g. m_200, t_5_5_2, u_10_10)",
                param="spec",
            )
        point_spec = PointSpec.parse(text)
        added = 0
        for image_id, name, height, width in queries.images_without_points(session, src.id):
            coords = image_points(point_spec, info.annotation_area, name, height, width, seed=seed)
            added += len(writes.add_points(session, image_id, coords, str(point_spec)))
        if info.point_spec is None:
            writes.update_source(session, src.id, point_spec=str(point_spec))
    return added
