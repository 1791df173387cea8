"""Shared fixtures: Hydra composition of the real conf/ tree, and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vaelab.runs.config import register_configs

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
TINY = ["data.n_patients=24", "data.seq_len=48", "trainer=debug", "model.latent_dim=4", "model.base_channels=8", "quiet=true"]


@pytest.fixture
def compose_config():
    """compose(overrides) -> DictConfig from the repository's conf/ (as `python -m vaelab` sees it)."""
    register_configs()

    def _compose(overrides=(), return_hydra_config=False):
        with initialize_config_dir(config_dir=str(CONF)):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)

    return _compose


@pytest.fixture
def run_cli(tmp_path):
    """Run `python -m vaelab ...` in a subprocess with its output directory under tmp_path."""

    def _run(*overrides: str, run_dir: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        run_dir = run_dir or tmp_path / "run"
        env = dict(os.environ, HYDRA_FULL_ERROR="0")
        return subprocess.run(
            [sys.executable, "-m", "vaelab", f"hydra.run.dir={run_dir}", *overrides],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    return _run
