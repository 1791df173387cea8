"""A sweep through hydra-ray-launcher (``hydra/launcher=ray``), run for real: the test starts a one-node
Ray cluster bound to 127.0.0.1 (``ray start --head``, tests/ray_local.py) and the sweep joins it with
``hydra.launcher.ray.init.address``, as on a real cluster; every trial is a Ray task in the cluster's
worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from ray_local import loopback_ray_cluster
from sweep_checks import check_whole_budget
from test_sweep_launchers import TINY_SWEEP

pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the ray extra is not installed (pip install -e .[ray])")

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_cluster():
    with loopback_ray_cluster(num_cpus=2) as cluster:  # raises on teardown when a Ray process outlives the stop
        yield cluster


def test_a_ray_cluster_runs_the_whole_budget(tmp_path, ray_cluster):
    address, env, temp_dir = ray_cluster
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab",
            *TINY_SWEEP,
            "hydra/launcher=ray",
            f"hydra.launcher.ray.init.address={address}",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Connecting to existing Ray cluster at address: {address}" in proc.stderr  # joined ours, started none
    trials = check_whole_budget(sweep_dir, 3)
    for t in trials:
        run_dir = sweep_dir / f"trial_{t.number}"
        hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
        assert hydra_cfg.launcher._target_ == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
        assert hydra_cfg.job.id == f"job_id_for_{t.number}"  # the id the Ray launcher gives each job
        assert json.loads((run_dir / "metrics.json").read_text())["threads"] == 1  # ray.remote.num_cpus: 1
    # the jobs ran in the cluster's workers: their log lines are in the cluster's worker logs
    worker_logs = "".join(p.read_text(errors="replace") for p in Path(temp_dir).glob("session_*/logs/worker-*"))
    for t in trials:
        assert str(sweep_dir / f"trial_{t.number}") in worker_logs
