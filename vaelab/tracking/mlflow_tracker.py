"""``logger=mlflow``: one MLflow run per vaelab run, through ``MlflowClient`` (no global active run).

The default store is ``sqlite:///<root>/mlflow.db``: root is the sweep directory for a sweep trial
and ``outputs/`` under the launch directory for a single run; artifacts of an experiment vaelab
creates in a SQLite store go to ``mlartifacts/`` beside the database. A sweep is one parent run
(tag ``vaelab.sweep_dir``) with one child run per trial (tags ``vaelab.trial`` and
``vaelab.trial_state``). Trials run in other processes (joblib, submitit, ray), so each one finds
or creates the parent under a file lock (beside the SQLite file, or in the sweep directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..io import LATENTS_FILE, METRICS_FILE, PLOTS_DIR
from .config import MLflowConfig, RunContext
from .content import final_metrics, flatten, safe_key, text

SWEEP_DIR_TAG = "vaelab.sweep_dir"
ROLE_TAG = "vaelab.role"  # sweep (the parent) or trial
TRIAL_TAG = "vaelab.trial"
TRIAL_STATE_TAG = "vaelab.trial_state"  # RUNNING, then COMPLETE / PRUNED / FAIL
STATUS_TAG = "vaelab.status"  # metrics.json's status
RUN_DIR_TAG = "vaelab.run_dir"

TRIAL_STATES = {"ok": "COMPLETE", "pruned": "PRUNED"}  # any other status: FAIL
RUN_STATUSES = {"ok": "FINISHED", "pruned": "FINISHED", "interrupted": "KILLED"}  # any other: FAILED
PARAM_CHARS = 500  # the parameter value length every MLflow server accepts (6000 from MLflow 2 on)
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def default_uri(context: RunContext) -> str:
    root = context.sweep_dir if context.sweep_dir is not None else context.launch_dir / "outputs"
    return f"sqlite:///{(Path(root) / 'mlflow.db').resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for other stores."""
    prefix = "sqlite:///"
    path = uri[len(prefix) :].split("?", 1)[0] if uri.startswith(prefix) else ""
    return Path(path) if path else None


@contextlib.contextmanager
def quick_http() -> Iterator[None]:
    """No retries and a 5 s timeout for the calls inside (start-up, closing after an error): an
    unreachable server costs seconds, not minutes of retries. A user's own settings are kept."""
    added = {name: value for name, value in QUICK_HTTP.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (no lock for None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def quoted(value: str) -> str:
    """A string literal for MLflow's search filter."""
    return f'"{value}"' if "'" in value else f"'{value}'"


class MLflowTracker:
    name = "mlflow"

    def __init__(self, settings: MLflowConfig, context: RunContext) -> None:
        from mlflow.tracking import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        self.settings, self.context, self.finished = settings, context, False
        self.uri = settings.tracking_uri or default_uri(context)
        database = sqlite_path(self.uri)
        sweep_dir = str(Path(context.sweep_dir).resolve()) if context.sweep_dir is not None else None
        lock = database.with_name(database.name + ".lock") if database else Path(sweep_dir) / "mlflow.lock" if sweep_dir else None
        self.parent_id = None
        tags = {RUN_DIR_TAG: str(Path(context.run_dir).resolve())}
        run_name = Path(context.run_dir).name
        with quick_http():
            with file_lock(lock):  # one process at a time creates the store (the client does), the experiment, the parent run
                self.client = MlflowClient(self.uri)
                experiment_id = self._experiment(settings.experiment_name, database)
                if sweep_dir is not None:
                    self.parent_id = self._sweep_parent(experiment_id, sweep_dir)
                    tags.update({MLFLOW_PARENT_RUN_ID: self.parent_id, SWEEP_DIR_TAG: sweep_dir, ROLE_TAG: "trial"})
                    tags.update({TRIAL_TAG: str(context.trial), TRIAL_STATE_TAG: "RUNNING"})
                    run_name = f"trial_{context.trial}"
                self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
            self._log_params()

    def _experiment(self, name: str, database: Path | None) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = (database.parent / "mlartifacts").resolve().as_uri() if database else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # created meanwhile by a process that holds no lock (a server store)
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _sweep_parent(self, experiment_id: str, sweep_dir: str) -> str:
        """The sweep's parent run, found by its tag or created (the caller holds the lock)."""
        query = f"tags.`{SWEEP_DIR_TAG}` = {quoted(sweep_dir)} and tags.`{ROLE_TAG}` = 'sweep'"
        found = self.client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time ASC"], max_results=1)
        if found:
            return found[0].info.run_id
        tags = {SWEEP_DIR_TAG: sweep_dir, ROLE_TAG: "sweep"}
        return self.client.create_run(experiment_id, run_name=Path(sweep_dir).name, tags=tags).info.run_id

    def _log_params(self) -> None:
        from mlflow.entities import Param

        params = [Param(safe_key(name), text(value)[:PARAM_CHARS]) for name, value in flatten(self.context.config).items()]
        self.client.log_batch(self.run_id, params=params)  # the client sends them in batches of 100

    def log_epoch(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(name, value, now, step) for name, value in scalars.items()])

    def finish(self, result: dict) -> None:
        from mlflow.entities import Metric, RunTag

        status = str(result.get("status", "failed"))
        now, step = int(time.time() * 1000), int(result.get("epochs_trained") or 0)
        metrics = [Metric(name, value, now, step) for name, value in final_metrics(result).items()]
        tags = [RunTag(STATUS_TAG, status)]
        if self.parent_id is not None:
            tags.append(RunTag(TRIAL_STATE_TAG, TRIAL_STATES.get(status, "FAIL")))
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        if self.settings.artifacts:
            self._log_artifacts()
        self.client.set_terminated(self.run_id, RUN_STATUSES.get(status, "FAILED"))
        self.finished = True
        if self.parent_id is not None:  # the sweep's run ends with its latest trial
            self.client.set_terminated(self.parent_id, "FINISHED")

    def _log_artifacts(self) -> None:
        run_dir = Path(self.context.run_dir)
        for name in (METRICS_FILE, LATENTS_FILE):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        plots = run_dir / PLOTS_DIR
        if plots.is_dir() and any(plots.glob("*.png")):
            self.client.log_artifacts(self.run_id, str(plots), PLOTS_DIR)

    def close(self) -> None:
        """Mark a run that did not reach ``finish`` FAILED."""
        if not self.finished:
            self.finished = True
            with quick_http():
                self.client.set_terminated(self.run_id, "FAILED")
