"""What every launcher's finished sweep must hold, for the tests that run sweeps for real."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState


def check_whole_budget(sweep_dir: Path, n_trials: int, study_name: str = "collapse") -> list[optuna.trial.FrozenTrial]:
    """The study in ``sweep_dir/optuna.db`` holds exactly trials 0..n_trials-1, all COMPLETE; each has
    its run directory ``trial_<number>`` (metrics.json ok, objectives equal to the study's values, the
    trial number in its saved config) and a row in the sweep report. Returns the trials."""
    trials = optuna.load_study(study_name=study_name, storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()
    assert sorted(t.number for t in trials) == list(range(n_trials))  # no duplicates, no gaps
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    for t in trials:
        run_dir = sweep_dir / f"trial_{t.number}"
        assert t.user_attrs["run_dir"] == str(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "ok" and t.values == [metrics["kl"], metrics["latent_spread"], metrics["recon_mse"]]
        assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").sweep_trial == t.number
    table = (sweep_dir / "report" / "table.csv").read_text().splitlines()
    assert len(table) == 1 + n_trials
    return trials
