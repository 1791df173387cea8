"""Sweeps through the parallel launchers, run for real: joblib (loky worker processes) and the
cluster path, submitit_local with slurm.yaml's settings (submitit's own executor, as on SLURM)."""

import json
import subprocess
import sys

import optuna
import pytest
from conftest import CONF, TINY
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.trial import TrialState

from vaelab.runs.config import register_configs

pytestmark = pytest.mark.slow

TINY_SWEEP = ["hparams_search=collapse", *TINY]


@pytest.mark.parametrize("launcher", ["slurm_local", "joblib"])
def test_a_parallel_launcher_runs_the_whole_budget(tmp_path, launcher):
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab",
            *TINY_SWEEP,
            f"hydra/launcher={launcher}",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = optuna.load_study(study_name="collapse", storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        run_dir = sweep_dir / f"trial_{t.number}"
        assert t.user_attrs["run_dir"] == str(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "ok" and t.values == [metrics["kl"], metrics["latent_spread"], metrics["recon_mse"]]
        assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").sweep_trial == t.number
    table = (sweep_dir / "report" / "table.csv").read_text().splitlines()
    assert len(table) == 1 + 3
    if launcher == "slurm_local":
        assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 3  # the jobs went through submitit


def test_the_local_rehearsal_of_slurm_has_slurms_settings():
    """slurm_local is worth running only while it asks submitit for what slurm asks SLURM for."""
    shared = ["timeout_min", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node", "gpus_per_node", "submitit_folder"]
    register_configs()

    def launcher(name):
        with initialize_config_dir(config_dir=str(CONF)):
            cfg = compose(
                "config",
                overrides=["hparams_search=collapse", f"hydra/launcher={name}", "hydra.sweep.dir=/sweep"],
                return_hydra_config=True,
            )
        return cfg.hydra.launcher

    slurm, local = launcher("slurm"), launcher("slurm_local")
    assert "SlurmLauncher" in slurm._target_ and "LocalLauncher" in local._target_
    assert {k: slurm[k] for k in shared} == {k: local[k] for k in shared}
    assert slurm.tasks_per_node == 1  # more would run every trial that many times into one directory
