"""``quadrat pretrain`` end to end, including a two-process DDP run on CPU (gloo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.extractors import create_extractor
from quadrat.ssl.config import save_config
from tests.ssl.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_bad_input_is_one_red_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["pretrain", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "nowhere: data not found" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lrr: 1\n")
    result = CliRunner().invoke(
        app,
        ["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(bad)],
    )
    assert result.exit_code == 1 and "unknown setting 'optim.lrr'" in result.output


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(ssl_inputs: dict[str, Path], tmp_path: Path) -> None:
    """Lightning launches the second rank itself; Barlow Twins gathers across both (gloo)."""
    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(log_every_n_steps=1), config)
    out = tmp_path / "run"
    env = {
        **os.environ,
        "QUADRAT_NO_PROGRESS": "1",
        "PYTHONPATH": str(ROOT / "src"),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "quadrat",
        "pretrain",
        "--data",
        str(ssl_inputs["folder"]),
        "--out",
        str(out),
        "--config",
        str(config),
        "--devices",
        "2",
        "--accelerator",
        "cpu",
        "--max-steps",
        "2",
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backbone written to" in done.stdout
    metrics = pd.read_csv(out / "logs" / "version_0" / "metrics.csv")
    assert metrics["train/loss"].notna().sum() == 2
    extractor = create_extractor(str(out / "backbone.safetensors"))
    assert extractor.config.name == "barlow_twins:test_resnet"
