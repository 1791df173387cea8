"""logger=mlflow on real SQLite tracking stores, read back with MlflowClient."""

import json
import logging
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient
from tracked_run import CONFIG, HISTORY, RESULT, single_run, write_run_dir

from vaelab.errors import VaelabError
from vaelab.tracking import LoggerConfig, MLflowConfig, RunContext, open_trackers
from vaelab.tracking.trackers import require

MLFLOW = LoggerConfig(mlflow=MLflowConfig())


def store(root) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def runs_of(client: MlflowClient, experiment="vaelab"):
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], order_by=["attributes.start_time ASC"])


def record(context: RunContext, result: dict = RESULT, settings=MLFLOW) -> list[str]:
    """Open, log every epoch, finish: what the pipeline does; the tracking errors."""
    trackers = open_trackers(settings, context)
    hook = trackers.epoch_hook(None)
    for epoch in range(len(HISTORY)):
        hook(HISTORY[: epoch + 1])
    trackers.finish(result)
    return trackers.errors


def trial(tmp_path, number: int, status: str = "ok") -> RunContext:
    sweep_dir = tmp_path / "sweep"
    result = {**RESULT, "status": status}
    return RunContext(write_run_dir(sweep_dir / f"trial_{number}", result), CONFIG, tmp_path, sweep_dir, number)


def test_a_single_run_logs_params_epochs_final_metrics_and_artifacts(tmp_path):
    context = single_run(tmp_path)
    long_config = {**CONFIG, "data": {"path": "x" * 2000}}
    context = RunContext(context.run_dir, long_config, context.launch_dir)
    assert record(context) == []

    client = store(tmp_path / "outputs")  # the default store of a single run: ./outputs/mlflow.db
    (run,) = runs_of(client)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["vaelab.status"] == "ok" and run.data.tags["vaelab.run_dir"] == str(context.run_dir)
    assert run.data.params["loss.beta"] == "0.5" and run.data.params["sweep.objectives"] == '["kl", "mi"]'
    assert run.data.params["data.path"] == "x" * 500  # truncated to what every MLflow server accepts
    history = client.get_metric_history(run.info.run_id, "val_kl")
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["val_kl"]) for r in HISTORY]
    assert run.data.metrics["final/kl"] == 3.0 and run.data.metrics["final/factor_r2/trend"] == 0.5
    assert "epoch" not in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"metrics.json", "vae_latents.h5", "plots/kl_per_dim.png"} <= artifacts
    assert run.info.artifact_uri.startswith((tmp_path / "outputs" / "mlartifacts").as_uri())


def test_the_trials_of_a_sweep_are_children_of_one_parent_tagged_with_their_state(tmp_path):
    for number, status in enumerate(["ok", "pruned", "diverged", "failed"]):
        assert record(trial(tmp_path, number, status), {**RESULT, "status": status}) == []
    client = store(tmp_path / "sweep")  # a sweep's default store is in its sweep directory
    parent, *children = runs_of(client)
    assert parent.data.tags["vaelab.sweep_dir"] == str(tmp_path / "sweep") and parent.data.tags["vaelab.role"] == "sweep"
    assert parent.info.status == "FINISHED" and parent.info.end_time >= max(c.info.end_time for c in children)
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [parent.info.run_id] * 4
    assert [c.data.tags["vaelab.trial"] for c in children] == ["0", "1", "2", "3"]
    assert [c.info.run_name for c in children] == ["trial_0", "trial_1", "trial_2", "trial_3"]
    assert [c.data.tags["vaelab.trial_state"] for c in children] == ["COMPLETE", "PRUNED", "FAIL", "FAIL"]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "FAILED", "FAILED"]
    assert all(c.data.metrics["final/kl"] == 3.0 for c in children)


TRIAL_SCRIPT = """
import sys
from pathlib import Path
from vaelab.tracking import LoggerConfig, MLflowConfig, RunContext, open_trackers
sweep, number = Path(sys.argv[1]), int(sys.argv[2])
(sweep / f"trial_{number}").mkdir(parents=True)
trackers = open_trackers(LoggerConfig(mlflow=MLflowConfig()), RunContext(sweep / f"trial_{number}", {}, sweep, sweep, number))
trackers.finish({"status": "ok"})
assert not trackers.errors, trackers.errors
"""


@pytest.mark.slow  # each process imports torch and mlflow: ~30 s on 2 cores
def test_trials_starting_together_in_other_processes_find_one_parent(tmp_path):
    sweep_dir = tmp_path / "sweep"
    procs = [
        subprocess.Popen([sys.executable, "-c", TRIAL_SCRIPT, str(sweep_dir), str(n)], stderr=subprocess.PIPE, text=True) for n in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
    parent, *children = runs_of(store(sweep_dir))
    assert sorted(c.data.tags["vaelab.trial"] for c in children) == ["0", "1"]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}


def test_an_unreachable_server_switches_mlflow_off_in_one_warning_and_seconds(tmp_path, caplog):
    settings = LoggerConfig(mlflow=MLflowConfig(tracking_uri="http://127.0.0.1:9/"))
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="vaelab.tracking"):
        trackers = open_trackers(settings, single_run(tmp_path))
    assert time.perf_counter() - started < 20  # no retries: MLflow's defaults retry for minutes
    assert trackers.active == [] and trackers.epoch_hook(None) is None
    (error,) = trackers.errors
    assert error.startswith("logger=mlflow failed: MlflowException: API request to http://127.0.0.1:9/")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [f"{error} (mlflow is off for the rest of the run)"]
    trackers.finish(RESULT)  # nothing left to call


def test_an_unwritable_sqlite_store_switches_mlflow_off(tmp_path):
    settings = LoggerConfig(mlflow=MLflowConfig(tracking_uri="sqlite:////proc/vaelab-no-such-dir/mlflow.db"))
    trackers = open_trackers(settings, single_run(tmp_path))
    (error,) = trackers.errors
    assert trackers.active == [] and "logger=mlflow failed" in error and "/proc/vaelab-no-such-dir" in error


def test_a_tracker_failing_mid_run_is_switched_off_and_the_epoch_hook_goes_on(tmp_path, caplog):
    context = single_run(tmp_path)
    trackers = open_trackers(MLFLOW, context)
    seen = []
    hook = trackers.epoch_hook(seen.append)
    hook(HISTORY[:1])
    client = store(tmp_path / "outputs")
    client.delete_run(trackers.active[0].run_id)  # later writes to this run fail
    with caplog.at_level(logging.WARNING, logger="vaelab.tracking"):
        hook(HISTORY[:2])
        hook(HISTORY[:3])
        trackers.finish(RESULT)
    assert len(seen) == 3 and trackers.active == []
    (error,) = trackers.errors
    assert "logger=mlflow failed: MlflowException" in error
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [f"{error} (mlflow is off for the rest of the run)"]


def test_a_missing_package_is_one_line_naming_the_extra():
    require("mlflow", "mlflow")
    with pytest.raises(VaelabError, match=r'^logger=mlflow needs the vaelab_no_such_package package: pip install -e "\.\[tracking\]"$'):
        require("mlflow", "vaelab_no_such_package")


def test_metrics_json_keeps_its_content_in_the_artifact(tmp_path):
    context = single_run(tmp_path)
    record(context)
    client = store(tmp_path / "outputs")
    (run,) = runs_of(client)
    local = client.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path))
    assert json.loads(open(local).read()) == RESULT
