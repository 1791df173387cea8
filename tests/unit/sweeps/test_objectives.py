"""Objectives and constraints read a run's metrics as documented; sweep settings refuse test-stay metrics."""

import pytest

from vaelab.errors import VaelabError
from vaelab.evaluation.objectives import TrialFailed, objectives
from vaelab.sweeps.config import SweepConfig
from vaelab.sweeps.sweeper import masked


def test_objectives_refuse_failed_runs_and_non_finite_metrics():
    with pytest.raises(TrialFailed, match="diverged"):
        objectives({"status": "diverged", "error": "loss is nan"}, SweepConfig())
    with pytest.raises(TrialFailed, match="'kl' is nan"):
        objectives({"status": "ok", "kl": float("nan"), "latent_spread": 1.0, "recon_mse": 0.1}, SweepConfig())
    ok = {"status": "ok", "kl": 40.0, "latent_spread": 0.9, "recon_mse": 0.3, "kl_per_latent_dim": 1.25}
    assert objectives(ok, SweepConfig()) == [40.0, 0.9, 0.3]
    assert objectives(ok | {"kl_per_latent_dim": 9.0}, SweepConfig()) == [-1e6, -1e6, 1e6]


def test_dotted_objectives_and_constraints_reach_nested_metrics():
    sweep = SweepConfig(
        objectives=["factor_r2.level", "recon_mse"],
        directions=["maximize", "minimize"],
        max_metrics={},
        min_metrics={"factor_r2.trend": 0.5},
    )
    metrics = {"status": "ok", "recon_mse": 0.3, "factor_r2": {"level": 0.6, "trend": 0.7}}
    assert objectives(metrics, sweep) == [0.6, 0.3]
    assert objectives(metrics | {"factor_r2": {"level": 0.6, "trend": 0.4}}, sweep) == [-1e6, 1e6]
    with pytest.raises(TrialFailed, match="'factor_r2.level' is None"):
        objectives({"status": "ok", "recon_mse": 0.3}, sweep)  # data without known factors


def test_a_logged_storage_url_has_its_password_masked():
    assert masked("postgresql://vaelab:s3cret@db.example:5432/studies") == "postgresql://vaelab:***@db.example:5432/studies"
    assert masked("sqlite:///multirun/x/optuna.db") == "sqlite:///multirun/x/optuna.db"
    assert "s3cret" not in masked("postgresql://vaelab:s3cret@[not a url")


def test_constraints_on_test_stay_metrics_are_refused_too():
    with pytest.raises(VaelabError, match="config sweep.max_metrics: 'probe_baseline_auroc' is scored on the probe's test stays"):
        SweepConfig(max_metrics={"probe_baseline_auroc": 1.0})
    assert SweepConfig(objectives=["probe_val_auroc"], directions=["maximize"]).objectives == ["probe_val_auroc"]
