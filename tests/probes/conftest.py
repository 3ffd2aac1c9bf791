"""Probe tests run single-threaded: their tensors are tiny, and on a shared 2-core machine
two OpenMP threads spinning against other jobs made a 0.2 s fit take 15 s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
