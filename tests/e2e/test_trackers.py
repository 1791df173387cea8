"""Experiment trackers through the real CLI: TensorBoard event files and MLflow's SQLite store read
back after real runs and a real sweep; tracker failures that leave the run alone; a missing package."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import TINY
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.slow

PLOTS = ["plots/kl_per_dim", "plots/latent_spread", "plots/reconstructions", "plots/training_curves"]


def mlflow_runs(database):
    client = MlflowClient(f"sqlite:///{database}")
    experiment = client.get_experiment_by_name("vaelab")
    return client, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_tensorboard_holds_each_epochs_history_the_hparams_and_the_figures(run_cli, tmp_path):
    proc = run_cli("logger=tensorboard", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "run"
    history = pd.read_csv(run / "history.csv")
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for column in history.columns.drop("epoch"):
        scalars = events.Scalars(column)
        assert [s.step for s in scalars] == list(history["epoch"])
        assert [s.value for s in scalars] == pytest.approx(list(history[column]), rel=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    assert events.Scalars("final/kl")[0].value == pytest.approx(metrics["kl"], rel=1e-5)
    assert sorted(events.Tags()["images"]) == PLOTS
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert metrics["tracking_errors"] == []


def test_many_feeds_both_and_mlflow_defaults_to_outputs_under_the_launch_directory(run_cli, tmp_path):
    proc = run_cli("logger=many", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "run"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    client, (mlflow_run,) = mlflow_runs(tmp_path / "outputs" / "mlflow.db")  # the command ran in tmp_path
    history = pd.read_csv(run / "history.csv")
    assert [m.value for m in client.get_metric_history(mlflow_run.info.run_id, "train_loss")] == pytest.approx(list(history["train_loss"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert mlflow_run.data.metrics["final/recon_mse"] == pytest.approx(metrics["recon_mse"])
    assert mlflow_run.data.params["model.latent_dim"] == "4" and mlflow_run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"metrics.json", "vae_latents.h5", "plots"} <= artifacts


def test_a_parallel_sweep_is_one_parent_run_with_a_child_per_trial(tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "vaelab",
        "hparams_search=collapse",
        "hydra.sweeper.n_trials=2",
        *TINY[:3],
        "model.latent_dim=4",
        f"hydra.sweep.dir={sweep_dir}",
        "logger=mlflow",
        "hydra/launcher=joblib",  # two worker processes start their trials at once
        "hydra.sweeper.n_jobs=2",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client, (parent, *children) = mlflow_runs(sweep_dir / "mlflow.db")
    assert parent.data.tags["vaelab.sweep_dir"] == str(sweep_dir) and parent.data.tags["vaelab.role"] == "sweep"
    assert sorted(c.data.tags["vaelab.trial"] for c in children) == ["0", "1"]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["vaelab.trial_state"] == "COMPLETE" and child.info.status == "FINISHED"
        run_dir = sweep_dir / f"trial_{child.data.tags['vaelab.trial']}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert child.data.metrics["final/kl"] == pytest.approx(metrics["kl"]) and metrics["tracking_errors"] == []
        assert len(client.get_metric_history(child.info.run_id, "val_kl")) == len(pd.read_csv(run_dir / "history.csv"))
        assert child.data.params["sweep_trial"] == child.data.tags["vaelab.trial"]


def test_an_unreachable_tracking_server_is_one_warning_and_the_run_finishes(run_cli, tmp_path):
    proc = run_cli("logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9/", *TINY, "eval.plots=false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "logger=mlflow" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and "mlflow is off for the rest of the run" in lines[0], lines
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and len(metrics["tracking_errors"]) == 1
    assert metrics["tracking_errors"][0].startswith("logger=mlflow failed: MlflowException: API request to http://127.0.0.1:9/")


BLOCK_MLFLOW = """
import sys

class BlockMlflow:
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, BlockMlflow())
"""


def test_a_missing_mlflow_package_stops_the_run_at_start_up_in_one_line(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCK_MLFLOW)  # `import mlflow` fails in the CLI's process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "vaelab", f"hydra.run.dir={run_dir}", "logger=mlflow", *TINY]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == 'vaelab: error: logger=mlflow needs the mlflow package: pip install -e ".[tracking]"'
    assert "Traceback" not in proc.stderr
    assert not (run_dir / "history.csv").exists()  # before training
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"


def test_help_lists_the_logger_group(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vaelab", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "logger: many, mlflow, tensorboard" in proc.stdout
