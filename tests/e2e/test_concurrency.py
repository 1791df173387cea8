"""Sweeps that must not lose work: concurrent workers on one study (PostgreSQL, SQLite) and a sweep
killed with SIGKILL mid-trial, then resumed."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from conftest import REPO
from optuna.trial import TrialState

from vaelab.results import load_study

pytestmark = pytest.mark.slow

TINY_SWEEP = [
    "hparams_search=collapse",
    "data.n_patients=24",
    "data.seq_len=48",
    "trainer=debug",
    "model.latent_dim=4",
    "sweep.heartbeat_seconds=1",
    "sweep.stale_after_seconds=4",
    "sweep.report=false",
]


def sweep_cmd(sweep_dir, *overrides):
    return [sys.executable, "-m", "vaelab", *TINY_SWEEP, f"hydra.sweep.dir={sweep_dir}", *overrides]


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL on 127.0.0.1, started (installed if missing) by the same helper CI uses."""
    proc = subprocess.run(["bash", str(REPO / ".ci" / "postgres")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f".ci/postgres failed: {proc.stderr}"
    return proc.stdout.strip().splitlines()[-1]


def check_workers_share_the_budget(storage, study_name, sweep_dirs, total, tmp_path):
    procs = [
        subprocess.Popen(
            sweep_cmd(d, f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={study_name}", f"hydra.sweeper.n_trials={total}"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in sweep_dirs
    ]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name=study_name, storage=storage)
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(complete) == total  # none lost, none extra
    run_dirs = [Path(t.user_attrs["run_dir"]) for t in complete]
    assert len(set(run_dirs)) == total  # no trial ran twice into the same directory
    for t, run_dir in zip(complete, run_dirs):
        assert run_dir.name == f"trial_{t.number}"
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
    assert len({tuple(sorted(t.params.items())) for t in complete}) == total  # no duplicated trial
    table = load_study(storage, study_name)
    assert (table["state"] == "COMPLETE").sum() == total
    assert {"kl", "latent_spread", "recon_mse"} <= set(table.columns)
    return study


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    name = f"test_{uuid.uuid4().hex[:8]}"
    try:
        check_workers_share_the_budget(postgres_url, name, [tmp_path / "machine_a", tmp_path / "machine_b"], 4, tmp_path)
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)


def test_two_workers_share_one_sqlite_study(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    check_workers_share_the_budget(f"sqlite:///{sweep_dir}/optuna.db", "collapse", [sweep_dir, sweep_dir], 4, tmp_path)


def test_a_sweep_killed_mid_trial_resumes_to_exactly_the_requested_trials(tmp_path):
    sweep_dir = tmp_path / "sweep"
    slow = ["hydra.sweeper.n_trials=3", "trainer.epochs=30", "trainer.patience=30"]
    proc = subprocess.Popen(sweep_cmd(sweep_dir, *slow), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (sweep_dir / "trial_1" / "train_state.pt").exists():  # trial 0 done, trial 1 training
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    storage = f"sqlite:///{sweep_dir}/optuna.db"
    before = {t.number: (t.state, t.values) for t in optuna.load_study(study_name="collapse", storage=storage).get_trials()}
    assert before[0][0] == TrialState.COMPLETE and before[1][0] == TrialState.RUNNING

    resumed = subprocess.run(sweep_cmd(sweep_dir, *slow), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    trials = optuna.load_study(study_name="collapse", storage=storage).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3
    assert trials[1].state == TrialState.FAIL  # the interrupted trial is recorded, not lost
    assert trials[0].values == before[0][1]  # finished work untouched
    assert states.count(TrialState.RUNNING) == 0
