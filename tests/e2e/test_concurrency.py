"""Sweeps that must not lose work: concurrent workers on one study (PostgreSQL, SQLite) and a sweep
killed with SIGKILL mid-trial, then resumed; a PostgreSQL password given through $VAELAB_STORAGE
stays out of the sweep directory and the logs."""

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
from sqlalchemy.engine import make_url

from vaelab.analysis.studies import EPOCHS_STUDY_SUFFIX
from vaelab.results import load_study
from vaelab.study_storage import make_storage
from vaelab.sweeps.sweeper import STORAGE_ENV

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


@pytest.fixture
def secret_postgres_url(postgres_url):
    """A role and database of their own on that server, with a random password nothing else contains
    (the shared role's password is its name, found everywhere); dropped afterwards."""
    name, password = f"vaelab_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex

    def as_postgres(sql):
        cmd = ["su", "postgres", "-c", f'psql -qc "{sql}"'] if os.getuid() == 0 else ["sudo", "-u", "postgres", "psql", "-qc", sql]
        subprocess.run(cmd, cwd="/", check=True, capture_output=True, timeout=60)

    as_postgres(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    as_postgres(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield make_url(postgres_url).set(username=name, password=password, database=name).render_as_string(hide_password=False), password
    finally:
        as_postgres(f"DROP DATABASE {name} WITH (FORCE)")
        as_postgres(f"DROP ROLE {name}")


def check_workers_share_the_budget(storage, study_name, sweep_dirs, total, tmp_path, *overrides):
    procs = [
        subprocess.Popen(
            sweep_cmd(
                d,
                f"hydra.sweeper.storage={storage}",
                f"hydra.sweeper.study_name={study_name}",
                f"hydra.sweeper.n_trials={total}",
                *overrides,
            ),
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
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage, heartbeat_seconds=None))
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


def test_two_workers_share_one_postgresql_study(secret_postgres_url, tmp_path):
    url, _ = secret_postgres_url  # a database of its own: not one an older optuna left tables in
    check_workers_share_the_budget(url, "collapse", [tmp_path / "machine_a", tmp_path / "machine_b"], 4, tmp_path)


def test_two_workers_share_one_sqlite_study(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    check_workers_share_the_budget(f"sqlite:///{sweep_dir}/optuna.db", "collapse", [sweep_dir, sweep_dir], 4, tmp_path)


def test_two_workers_share_one_journal_file(tmp_path):
    """Optuna's JournalStorage: several processes on one file, no database server."""
    journal = tmp_path / "shared" / "study.log"
    check_workers_share_the_budget(f"journal://{journal}", "collapse", [tmp_path / "worker_a", tmp_path / "worker_b"], 4, tmp_path)
    assert journal.is_file()


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_pruning_workers_share_one_study(tmp_path, storage):
    """Pruned trials do not count toward the total, whichever worker ran them; each sweep trial has
    exactly one companion trial, in the same state. Which trials the collapse rule prunes is set by
    construction: the sweep draws the rule's KL floor itself, 0 (no trial is below it) or 1e9 (every
    trial is, from the first judged epoch)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    url = f"sqlite:///{shared}/optuna.db" if storage == "sqlite" else f"journal://{shared}/study.log"
    pruned_by_floor = [
        "sweep.pruner=collapse",
        "sweep.collapse.warmup_epochs=1",
        "sweep.collapse.patience=1",
        "sweep.collapse.min_active_units=0",
        "sweep.collapse.min_kl=choice(0, 1e9)",
    ]
    dirs = [tmp_path / "worker_a", tmp_path / "worker_b"]
    study = check_workers_share_the_budget(url, "collapse", dirs, 3, tmp_path, *pruned_by_floor)
    trials = study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and {t.params["sweep.collapse.min_kl"] for t in pruned} == {1e9}  # the seeded draws include 1e9
    assert {t.params["sweep.collapse.min_kl"] for t in trials if t.state == TrialState.COMPLETE} == {0}
    for t in pruned:
        assert t.user_attrs["pruned_epoch"] == 1
        assert json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())["status"] == "pruned"
    companions = optuna.load_study(study_name="collapse" + EPOCHS_STUDY_SUFFIX, storage=make_storage(url, heartbeat_seconds=None))
    by_number = {t.number: t for t in trials}
    assert sorted(c.user_attrs["sweep_trial"] for c in companions.get_trials()) == sorted(by_number)
    for c in companions.get_trials():
        assert c.state == by_number[c.user_attrs["sweep_trial"]].state


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


def test_a_postgresql_password_from_the_environment_stays_out_of_the_sweep(secret_postgres_url, tmp_path):
    url, password = secret_postgres_url
    sweep_dir = tmp_path / "sweep"
    overrides = ["hydra.sweeper.storage=env", "hydra.sweeper.n_trials=2", "hydra/launcher=slurm_local", "hydra.sweeper.n_jobs=2"]
    cmd = [a for a in sweep_cmd(sweep_dir, *overrides) if a != "sweep.report=false"]  # the cluster path, its pickles included
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ, **{STORAGE_ENV: url}))
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="collapse", storage=url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    files = [p for p in sweep_dir.rglob("*") if p.is_file()]
    assert any(p.name == "hydra.yaml" for p in files) and any(p.suffix == ".pkl" for p in files)
    assert (sweep_dir / "report" / "table.csv") in files
    assert [p for p in files if password.encode() in p.read_bytes()] == []
    logs = proc.stdout + proc.stderr
    assert password not in logs
    assert f":***@{make_url(url).host}" in logs  # the storage is logged, masked
