"""``--column NAME=COLUMN`` (repeatable), shared by ``validate`` and ``download``."""

from __future__ import annotations

from quadrat.errors import InputError


def parse_column_map(items: list[str] | None) -> dict[str, str]:
    """``["url=path_best", "image=key"]`` -> ``{"url": "path_best", "image": "key"}``."""
    mapping: dict[str, str] = {}
    for item in items or []:
        target, sep, own = item.partition("=")
        if not sep or not target.strip() or not own.strip():
            raise InputError(
                f"--column takes NAME=COLUMN (e.g. url=path_best), not {item!r}", value=item
            )
        mapping[target.strip()] = own.strip()
    return mapping
