"""Sweeps through the parallel launchers, run for real: joblib (loky worker processes) and the
cluster path, submitit_local with slurm.yaml's settings (submitit's own executor, as on SLURM)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import CONF, TINY
from hydra import compose, initialize_config_dir
from optuna.trial import TrialState
from sweep_checks import check_whole_budget

from vaelab.io import TRAIN_STATE_FILE
from vaelab.runs.config import register_configs
from vaelab.sweeps.sweeper import EXIT_BAD_CONFIG

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
    for t in check_whole_budget(sweep_dir, 3):
        # a trial trains with its launcher's share of the cores: slurm.yaml's cpus_per_task, or one per joblib worker
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert metrics["threads"] == (2 if launcher == "slurm_local" else 1)
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


def test_a_gpu_the_trials_would_leave_idle_stops_the_sweep_before_its_first_trial(tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vaelab", *TINY_SWEEP, "hydra/launcher=slurm_local", "hydra.launcher.gpus_per_node=1"]
    proc = subprocess.run([*cmd, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_BAD_CONFIG
    assert proc.stderr.strip().splitlines() == [
        "vaelab: error: hydra.launcher.gpus_per_node=1 gives each trial a GPU, but trainer.device=cpu leaves it idle: add trainer.device=cuda"
    ]
    assert not list(sweep_dir.glob("trial_*")) and not (sweep_dir / "optuna.db").exists()  # refused before any trial


def _submitit_tasks(sweep_dir) -> list[int]:
    """The pids of the submitit_local task processes running this sweep's jobs."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"submitit.core._submit" in cmdline and any(str(sweep_dir).encode() in arg for arg in cmdline):
                pids.append(int(proc.name))
    return pids


def test_a_preempted_slurm_trial_is_resubmitted_and_resumes_from_its_state(tmp_path):
    """SLURM preempts a job with SIGUSR2 (submitit's signal); submitit checkpoints the job and requeues it,
    and the requeued job, same overrides and same directory, resumes from train_state.pt. The same code
    path runs under submitit_local, whose controller requeues the job itself."""
    sweep_dir = tmp_path / "sweep"
    epochs = 60
    cmd = [
        sys.executable,
        "-m",
        "vaelab",
        *TINY_SWEEP,
        "hydra/launcher=slurm_local",
        "hydra.sweeper.n_trials=1",
        f"trainer.epochs={epochs}",
        f"trainer.patience={epochs}",
        "trainer.keep_state=true",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    sweep = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = sweep_dir / "trial_0" / TRAIN_STATE_FILE
    deadline = time.monotonic() + 300
    while not state.exists() and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.exists(), "the trial never wrote its training state"
    tasks = _submitit_tasks(sweep_dir)
    assert len(tasks) == 1
    os.kill(tasks[0], signal.SIGUSR2)  # what SLURM sends before preempting the job
    _, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err[-2000:]
    trial = optuna.load_study(study_name="collapse", storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()
    assert [t.state for t in trial] == [TrialState.COMPLETE]
    run_dir = sweep_dir / "trial_0"
    log = (run_dir / "vaelab.log").read_text()
    assert log.count("resuming from") == 1  # the requeued job went on from the state, not from epoch 0
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(epochs))  # every epoch once: none lost, none repeated
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
