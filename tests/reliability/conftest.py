"""Fixtures of the reliability tests: the CLI run in fresh processes, its imports paid once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.reliability._warm_cli import WarmCLI


@pytest.fixture(scope="session")
def warm_cli() -> Iterator[WarmCLI]:
    """Forks ``quadrat`` commands from a process that imported the library (see _warm_cli)."""
    env = {**os.environ, "QUADRAT_NO_PROGRESS": "1", "COLUMNS": "200", "NO_COLOR": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")
    cli = WarmCLI(env)
    try:
        yield cli
    finally:
        cli.close()
