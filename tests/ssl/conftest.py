"""Tiny settings shared by the pretraining tests: a test-sized timm network, 32 px views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quadrat.ssl.config import SSLConfig
from tests.data.ssl.data import make_folder_tree, make_photos, make_shards

TINY: dict[str, Any] = {
    "backbone": "test_resnet",
    "epochs": 1,
    "batch_size": 6,
    "log_every_n_steps": 1,
    "augment": {"image_size": 32},
    "head": {
        "projector_hidden_dim": 32,
        "projector_output_dim": 16,
        "predictor_hidden_dim": 8,
        "queue_size": 24,
    },
    "data": {"num_workers": 0, "patch_size": 64, "patches_per_photo": 6, "shuffle_buffer": 8},
}


def tiny_config(method: str = "barlow_twins", **overrides: Any) -> SSLConfig:
    """Method defaults shrunk to test size, then ``overrides``."""
    return SSLConfig.for_method(method, **{**TINY, **overrides})


@pytest.fixture(scope="session")
def ssl_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A labelled folder tree, a shard set and a folder of photos, made once."""
    root = tmp_path_factory.mktemp("ssl")
    make_shards(root / "shards")
    make_photos(root / "photos")
    return {
        "folder": make_folder_tree(root / "folder"),
        "shards": root / "shards",
        "photos": root / "photos",
    }
