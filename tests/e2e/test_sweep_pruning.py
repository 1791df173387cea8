"""Pruned sweeps through the real CLI: the collapse rule and Optuna's pruners, on real SQLite
studies; and a study written by optuna 2.10 (a committed fixture) refused with its upgrade command."""

import json
import shutil
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from conftest import REPO
from optuna.trial import TrialState

from vaelab.analysis.studies import EPOCHS_STUDY_SUFFIX
from vaelab.results import load_runs
from vaelab.sweeps.sweeper import EXIT_BAD_CONFIG, EXIT_GAVE_UP

pytestmark = pytest.mark.slow

TINY_SWEEP = ["hparams_search=collapse", "data.n_patients=24", "data.seq_len=48", "model.latent_dim=4", "trainer.batch_size=16"]
# A rule every trial breaks at its first judged epoch: the sweep must prune, and then give up.
PRUNE_ALL = [
    "sweep.pruner=collapse",
    "sweep.collapse.warmup_epochs=1",
    "sweep.collapse.patience=1",
    "sweep.collapse.min_kl=1e9",
    "trainer.epochs=5",
]


def sweep(tmp_path, sweep_dir, *overrides, timeout=600):
    cmd = [sys.executable, "-m", "vaelab", *TINY_SWEEP, f"hydra.sweep.dir={sweep_dir}", *overrides]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def load(sweep_dir, name="collapse"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir}/optuna.db")


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"]], ids=["basic", "joblib"])
def test_collapsed_trials_are_pruned_at_their_epoch_kept_and_shown(tmp_path, launcher):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=1", *PRUNE_ALL, *launcher)
    # every trial pruned: none complete, so the sweep gives up (10 x the budget) and says so in one line
    assert proc.returncode == EXIT_GAVE_UP, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("vaelab: error: sweep collapse: 0 of 1 trials complete (0 failed, 10 pruned); gave up after 10 pruned")
    trials = load(sweep_dir).get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * 10
    for t in trials:
        assert t.user_attrs["pruned_epoch"] == 1 and "collapsed for 1 epochs" in t.user_attrs["pruned_reason"]
        run_dir = sweep_dir / f"trial_{t.number}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and metrics["pruned_epoch"] == 1 and metrics["epochs_trained"] == 2
        assert len(pd.read_csv(run_dir / "history.csv")) == 2  # trained to the pruned epoch, not to trainer.epochs
    runs = load_runs(sweep_dir)
    assert (runs["status"] == "pruned").sum() == 10 and set(runs["pruned_epoch"]) == {1}
    table = subprocess.run([sys.executable, "-m", "vaelab.results", str(sweep_dir)], capture_output=True, text=True, cwd=REPO)
    assert table.returncode == 0 and table.stdout.count("pruned") >= 10, table.stderr


def test_submitit_jobs_are_pruned_and_the_rest_fill_the_budget(tmp_path):
    """The SLURM code path (submitit_local with slurm.yaml's settings). Which trials the rule prunes is
    set by construction: the sweep draws the rule's KL floor itself, 0 (never met) or 1e9 (always)."""
    sweep_dir = tmp_path / "sweep"
    floor_drawn = [
        "sweep.pruner=collapse",
        "sweep.collapse.warmup_epochs=1",
        "sweep.collapse.patience=1",
        "sweep.collapse.min_active_units=0",
        "sweep.collapse.min_kl=choice(0, 1e9)",
        "trainer.epochs=3",
    ]
    proc = sweep(tmp_path, sweep_dir, "hydra/launcher=slurm_local", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2", *floor_drawn)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = load(sweep_dir).get_trials()
    states = {t.number: t.state for t in trials}
    assert sum(s == TrialState.COMPLETE for s in states.values()) == 2
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.params["sweep.collapse.min_kl"] == 1e9 and t.user_attrs["pruned_epoch"] == 1 for t in pruned)
    for t in trials:
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert metrics["status"] == ("pruned" if t.state == TrialState.PRUNED else "ok")
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == len(trials)  # every job went through submitit


def test_an_optuna_pruner_judges_each_epochs_validation_loss(tmp_path):
    sweep_dir = tmp_path / "sweep"
    options = ["sweep.pruner=median", "+sweep.pruner_options.n_startup_trials=1", "+sweep.pruner_options.n_warmup_steps=0"]
    proc = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=3", "trainer.epochs=3", *options)
    assert proc.returncode == 0, proc.stderr[-2000:]
    main = {t.number: t for t in load(sweep_dir).get_trials()}
    epochs = load(sweep_dir, "collapse" + EPOCHS_STUDY_SUFFIX)
    companions = epochs.get_trials()
    assert sorted(t.user_attrs["sweep_trial"] for t in companions) == sorted(main)  # one companion per sweep trial
    for companion in companions:
        trial = main[companion.user_attrs["sweep_trial"]]
        history = pd.read_csv(sweep_dir / f"trial_{trial.number}" / "history.csv")
        assert list(companion.intermediate_values) == list(history["epoch"])
        assert list(companion.intermediate_values.values()) == pytest.approx(list(history["val_loss"]))
        assert companion.state == trial.state  # COMPLETE or PRUNED in both
    assert sum(t.state == TrialState.COMPLETE for t in main.values()) == 3


def test_an_unknown_pruner_stops_the_sweep_before_its_first_trial(tmp_path):
    proc = sweep(tmp_path, tmp_path / "sweep", "sweep.pruner=medain", timeout=120)
    assert proc.returncode == EXIT_BAD_CONFIG
    assert proc.stderr.strip().splitlines()[-1].startswith("vaelab: error: config sweep.pruner: must be one of none, collapse, median")
    assert not (tmp_path / "sweep" / "trial_0").exists()


def test_a_study_written_by_optuna_2_10_gets_its_upgrade_command(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(REPO / "tests" / "fixtures" / "optuna-2.10.db", db)  # written by optuna 2.10.1 (3 trials)
    before = db.read_bytes()
    storage = f"hydra.sweeper.storage=sqlite:///{db}"
    proc = sweep(tmp_path, tmp_path / "sweep", storage, "hydra.sweeper.n_trials=4", "trainer=debug", timeout=120)
    assert proc.returncode == EXIT_BAD_CONFIG
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"vaelab: error: study storage sqlite:///{db}: its tables were written by optuna 2.10.1; upgrade them in place "
        f"(copy the file first to keep the old one): optuna storage upgrade --storage 'sqlite:///{db}'"
    )
    assert db.read_bytes() == before  # nothing written to the old database
    upgrade = subprocess.run(["optuna", "storage", "upgrade", "--storage", f"sqlite:///{db}"], capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    again = sweep(tmp_path, tmp_path / "sweep", storage, "hydra.sweeper.n_trials=4", "trainer=debug")
    assert again.returncode == 0, again.stderr[-2000:]
    trials = optuna.load_study(study_name="collapse", storage=f"sqlite:///{db}").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # the 2.10 trials kept, one new
