"""vaelab's Optuna sweeper: hydra-optuna-sweeper with a total trial budget that survives kills.

The plugin runs ``n_trials`` *more* trials every time it starts, crashes on a NaN objective and
never learns of a killed trial. This subclass keeps the plugin's config, search-space syntax and
samplers, and changes the loop (docs/design-notes.md §2):

- ``n_trials`` is the study's **total** of COMPLETE trials: re-running the same command on the same
  storage (same sweep directory) runs only what is missing, so an interrupted sweep is resumed by
  running it again. Several sweep processes sharing one storage URL split the budget between them.
- Each running trial gets a heartbeat from its sweep process; a RUNNING trial silent for
  ``sweep.stale_after_seconds`` belongs to a killed process and is marked FAIL (then replaced).
- A job that raises, or returns a non-finite value, becomes a FAIL trial; the sweep goes on.
  It gives up when one process has failed as many trials as the budget without completing any
  (a broken config), or ten times the budget in all.
- The sampler's random state is derived from (seed, trial number), so a resumed sweep or a
  second worker does not replay the same start-up trials.
- Every job gets ``sweep_trial=<trial number>``, so its run directory is ``trial_<number>`` and runs
  join their Optuna trials; the study records the objective names as a user attribute.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides

from .config import SweepConfig

log = logging.getLogger(__name__)


STORAGE_ATTEMPTS = 5


def make_storage(url: Any, heartbeat_seconds: int, stale_after_seconds: int):
    """An RDB storage with heartbeats for a database URL; anything else is passed through.

    Sweep workers started together on a fresh database all create its schema; all but the first
    fail on the schema's version row (IntegrityError) or on SQLite's lock (OperationalError). The
    schema exists by then, so connecting again succeeds: a few tries, with a short random pause.
    """
    if not (isinstance(url, str) and "://" in url):
        return url
    for attempt in range(1, STORAGE_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_seconds, grace_period=stale_after_seconds)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
            if attempt == STORAGE_ATTEMPTS:
                raise
            log.info("storage %s not ready (%s); trying again", url, type(exc).__name__)
            time.sleep(0.2 * attempt + random.random() * 0.3)


@contextlib.contextmanager
def heartbeats(storage, trials: Sequence[optuna.trial.Trial], interval: float) -> Iterator[None]:
    """Record a heartbeat for each trial every ``interval`` seconds while the block runs."""
    if not isinstance(storage, optuna.storages.RDBStorage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            for trial in trials:
                with contextlib.suppress(Exception):  # a beat lost to a busy database is retried
                    storage.record_heartbeat(trial._trial_id)
            stop.wait(interval)

    thread = threading.Thread(target=beat, name="vaelab-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def seed_for_trial(sampler, base_seed: int | None, number: int) -> None:
    """Give the sampler a random state derived from (seed, trial number).

    A seeded sampler otherwise replays the same start-up draws in every process: a resumed sweep
    repeats its first trials and two workers on one study draw identical ones. Per-trial seeds keep
    a sweep reproducible and its trials distinct. (Optuna 2.10 samplers keep ``_rng``.)
    """
    rng = np.random.RandomState((base_seed * 1_000_003 + number) % 2**32) if base_seed is not None else np.random.RandomState()
    for obj in (sampler, getattr(sampler, "_random_sampler", None)):
        if obj is not None and hasattr(obj, "_rng"):
            obj._rng = rng


def count_states(study: optuna.Study) -> dict[TrialState, int]:
    counts = {state: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state] += 1
    return counts


class TotalTrialsImpl(OptunaSweeperImpl):
    """The plugin's implementation with vaelab's loop (Hydra loads it through
    hydra_plugins/vaelab_sweeper/total_trials.py)."""

    def sweep(self, arguments: list[str]) -> None:
        sweep_cfg = self.config.get("sweep")
        heartbeat_s = int(sweep_cfg.heartbeat_seconds) if sweep_cfg else SweepConfig.heartbeat_seconds
        stale_s = int(sweep_cfg.stale_after_seconds) if sweep_cfg else SweepConfig.stale_after_seconds
        self._process_searchspace_config()
        distributions, fixed_params = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        space = dict(self.search_space_distributions or {})
        space.update(distributions)
        for name in fixed_params:
            space.pop(name, None)

        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        storage = make_storage(self.storage, heartbeat_s, stale_s)
        directions = self._get_directions()
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=self.sampler, directions=directions, load_if_exists=True
        )
        if sweep_cfg is not None:
            study.set_user_attr("objectives", list(sweep_cfg.objectives))
        log.info("Study %s in %s: %d trials wanted in total, directions %s", study.study_name, self.storage, self.n_trials, directions)

        base_seed = self.config.hydra.sweeper.sampler.get("seed")
        failures = completed = 0
        while True:
            if isinstance(storage, optuna.storages.RDBStorage):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            counts = count_states(study)
            to_go = self.n_trials - counts[TrialState.COMPLETE] - counts[TrialState.RUNNING]
            if to_go <= 0:
                if counts[TrialState.RUNNING] == 0:
                    break
                time.sleep(min(heartbeat_s, 5))  # other workers (or a killed one going stale) still hold trials
                continue
            if (failures >= self.n_trials and completed == 0) or failures >= 10 * self.n_trials:
                log.error(
                    "Giving up: %d trials failed and %d completed in this sweep process (budget %d)", failures, completed, self.n_trials
                )
                break
            trials = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            trials = self._drop_surplus(study, trials)
            if not trials:
                continue
            overrides = []
            for trial in trials:
                seed_for_trial(self.sampler, base_seed, trial.number)
                overrides += self._configure_trials([trial], space, fixed_params)
            overrides = [(*params, f"sweep_trial={trial.number}") for params, trial in zip(overrides, trials)]
            with heartbeats(storage, trials, heartbeat_s):
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            for trial, ret in zip(trials, returns):
                if self._tell(study, trial, ret, len(directions)):
                    completed += 1
                else:
                    failures += 1

        counts = count_states(study)
        log.info("Sweep done: %d complete, %d failed", counts[TrialState.COMPLETE], counts[TrialState.FAIL])
        if sweep_cfg is not None and sweep_cfg.report:
            from .report import write_sweep_report

            try:
                write_sweep_report(Path(str(self.config.hydra.sweep.dir)))
            except Exception as exc:  # noqa: BLE001 - a report problem must not fail a finished sweep
                log.warning("Sweep report not written: %s", exc)

    def _drop_surplus(self, study: optuna.Study, trials: list) -> list:
        """Workers racing for the last trials: keep the budget's first trials, FAIL the rest unrun."""
        live = sorted(t.number for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.RUNNING))
        allowed = set(live[: self.n_trials])
        kept = []
        for trial in trials:
            if trial.number in allowed:
                kept.append(trial)
            else:
                trial.set_user_attr("vaelab_surplus", True)
                study.tell(trial, state=TrialState.FAIL)
        return kept

    def _tell(self, study: optuna.Study, trial, ret, n_objectives: int) -> bool:
        """COMPLETE with the job's finite values, else FAIL; never raises. True when complete."""
        with contextlib.suppress(Exception):
            trial.set_user_attr("run_dir", str(ret.hydra_cfg.hydra.runtime.output_dir))
        try:
            value = ret.return_value  # re-raises the job's exception
            values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            if len(values) != n_objectives or not all(math.isfinite(v) for v in values):
                raise ValueError(f"expected {n_objectives} finite objective values, got {value!r}")
            study.tell(trial, values=values)
            return True
        except Exception as exc:  # noqa: BLE001 - any job failure becomes a FAIL trial
            log.warning("Trial %d failed: %s", trial.number, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            study.tell(trial, state=TrialState.FAIL)
            return False
