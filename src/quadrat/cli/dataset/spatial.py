"""Placeholder until its commands land."""

from quadrat.cli.dataset import app  # noqa: F401
