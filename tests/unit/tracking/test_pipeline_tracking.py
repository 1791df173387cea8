"""The pipeline feeds the trackers: every epoch beside a sweep's pruning hook, and the run's end
whatever its status (a pruned trial is tagged PRUNED). In-process runs on tiny data."""

import json

from conftest import TINY
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vaelab.runs.config import validate
from vaelab.runs.pipeline import run
from vaelab.training.trainer import TrainingPruned


def test_a_pruned_trial_logs_its_epochs_and_is_tagged_pruned(compose_config, tmp_path):
    experiment = validate(compose_config([*TINY, "trainer.epochs=4", "logger=many", "sweep_trial=7"]))
    judged = []

    def prune_at_epoch_1(history):  # a sweep's pruning hook
        judged.append(len(history))
        if len(history) == 2:
            raise TrainingPruned(1, "hopeless")

    run_dir = tmp_path / "sweep" / "trial_7"  # outside Hydra, a trial's sweep directory is its run directory's parent
    result = run(experiment, run_dir, on_epoch=prune_at_epoch_1)
    assert result["status"] == "pruned" and result["pruned_epoch"] == 1 and judged == [1, 2]
    assert result["tracking_errors"] == [] and json.loads((run_dir / "metrics.json").read_text())["tracking_errors"] == []

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("val_kl")] == [0, 1]

    client = MlflowClient(f"sqlite:///{tmp_path / 'sweep' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("vaelab").experiment_id], filter_string="tags.`vaelab.trial` = '7'")
    (child,) = runs
    assert child.data.tags["vaelab.trial_state"] == "PRUNED" and child.data.tags["vaelab.status"] == "pruned"
    assert child.data.params["trainer.epochs"] == "4" and child.data.metrics["final/pruned_epoch"] == 1
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val_kl")] == [0, 1]


def test_a_run_without_a_logger_records_no_tracking(compose_config, tmp_path):
    result = run(validate(compose_config([*TINY, "eval.plots=false", "eval.probe_table=false"])), tmp_path / "run")
    assert result["status"] == "ok" and "tracking_errors" not in result
    assert not (tmp_path / "run" / "tensorboard").exists()
