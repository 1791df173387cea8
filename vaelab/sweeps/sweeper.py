"""vaelab's Optuna sweeper: hydra-optuna-sweeper with a total trial budget that survives kills.

The plugin runs ``n_trials`` *more* trials every time it starts, crashes on a NaN objective and
never learns of a killed trial. This subclass keeps the plugin's config, search-space syntax and
samplers, and changes the loop (docs/design-notes.md §2):

- ``n_trials`` is the study's **total** of COMPLETE trials: re-running the same command on the same
  storage (same sweep directory) runs only what is missing, so an interrupted sweep is resumed by
  running it again. Several sweep processes sharing one storage URL split the budget between them.
- The composed config is checked once before the first trial: a bad setting is one line and
  EXIT_BAD_CONFIG, not a FAIL trial per job.
- Each running trial gets a heartbeat from its sweep process; a RUNNING trial silent for
  ``sweep.stale_after_seconds`` belongs to a killed process and is marked FAIL (then replaced).
- A job that raises, or returns a non-finite value, becomes a FAIL trial; the sweep goes on.
  It gives up when one process has failed as many trials as the budget without completing any
  (a broken config), or ten times the budget in all (pruned trials included).
- With ``sweep.pruner``, each job reports its epochs and a hopeless trial stops early: PRUNED,
  not counted toward the budget (vaelab/sweeps/pruning.py).
- A launcher that raises (submitit: a SLURM job past its time or memory limit) fails the trials
  of that batch, not the sweep.
- SIGTERM or SIGINT stops the sweep: its launcher's workers are killed, its running trials are
  marked FAIL, the report is written and the process exits EXIT_ENDED_SHORT.
- The process exits 0 only when the study holds ``n_trials`` COMPLETE trials; otherwise it prints
  one line (how many completed, failed, were pruned) and exits EXIT_GAVE_UP or EXIT_ENDED_SHORT.
- The sampler's random state is derived from (seed, trial number), so a resumed sweep or a
  second worker does not replay the same start-up trials.
- Every job gets ``sweep_trial=<trial number>``, so its run directory is ``trial_<number>`` and runs
  join their Optuna trials; the study records the objective names as a user attribute.
- ``hydra.sweeper.storage=env`` (or null) reads the storage URL from ``$VAELAB_STORAGE``, so a
  database password never enters the config Hydra saves into every run directory; logged URLs
  have their password masked.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import optuna
from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides

from ..errors import VaelabError, check
from ..study_storage import STORAGE_ENV, STORAGE_FROM_ENV, has_password, make_storage, masked, storage_url
from .config import SweepConfig
from .launchers import check_launcher

log = logging.getLogger(__name__)

# A sweep process's exit statuses (a single run's: 0 done, 2 bad config or input, 3 diverged).
EXIT_BAD_CONFIG = 2  # a setting is invalid: found before the first trial, no trial ran
EXIT_GAVE_UP = 4  # too many trials failed (a broken config or data): the budget was not reached
EXIT_ENDED_SHORT = 5  # stopped (SIGTERM/SIGINT) before the budget was reached

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WORKER_GRACE_SECONDS = 3.0  # a worker still alive this long after SIGTERM gets SIGKILL


def fail(status: int, message: str) -> NoReturn:
    """One line on stderr and the exit status; SystemExit passes through Hydra without a traceback."""
    print(f"vaelab: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def hydra_override(key: str, value: str) -> str:
    """``key='value'``, quoted for Hydra's override parser (a path may hold ':', ' ', '=' ...)."""
    return f"{key}='" + value.replace("'", "\\'") + "'"


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


class Interrupted(BaseException):
    """SIGTERM/SIGINT reached the sweep. A BaseException, so that no launcher or job records it as a
    trial's failure: it unwinds the launch (joblib then aborts its workers) up to the sweep loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Raise Interrupted on the first SIGTERM/SIGINT; ignore later ones, so the cleanup that follows
    (stopping workers, marking trials, the report) runs to its end. Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        ignore_stop_signals()
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _proc_stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, ...); None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _proc_stat(entry.name)
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def stop_workers() -> int:
    """Kill the launcher's workers and whatever they started: every process below this one gets
    SIGTERM, and SIGKILL when still alive after WORKER_GRACE_SECONDS (submitit's jobs ignore SIGTERM).
    The tree is listed before the first signal, so grandchildren orphaned by it are not missed.
    Resource trackers (multiprocessing's, loky's) are spared: they exit with this process and then
    remove the semaphores and memmap folders the killed workers leave."""
    pids = [pid for pid in descendants(os.getpid()) if b"resource_tracker" not in _cmdline(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + WORKER_GRACE_SECONDS
        while pids and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:  # reap our own children, so they leave /proc
                    pass
            pids = [p for p in pids if (_proc_stat(p) or ["Z"])[0] != "Z"]
            time.sleep(0.05)
        if not pids:
            break
    return len(pids)


def trial_random_state(base_seed: int | None, number: int, stream: int = 0) -> np.random.RandomState:
    """A random state for trial ``number``: its own SeedSequence stream of (seed, trial, stream).

    Consecutive integer seeds of MT19937 give correlated first draws (NumPy's warning); a
    SeedSequence spreads related seeds apart. No seed: fresh entropy.
    """
    entropy = None if base_seed is None else [int(base_seed) % 2**63, number, stream]
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(entropy)))


def seed_for_trial(sampler, base_seed: int | None, number: int) -> None:
    """Give the sampler (and the samplers it falls back on) random states derived from
    (seed, trial number).

    A seeded sampler otherwise replays the same start-up draws in every process: a resumed sweep
    repeats its first trials and two workers on one study draw identical ones. Per-trial streams keep
    a sweep reproducible and its trials distinct. Optuna's samplers keep a LazyRandomState in ``_rng``.
    """
    parts = [sampler, getattr(sampler, "_random_sampler", None), getattr(sampler, "_independent_sampler", None)]
    for stream, part in enumerate(parts):
        lazy = getattr(part, "_rng", None)
        if lazy is not None and hasattr(lazy, "_rng"):
            lazy._rng = trial_random_state(base_seed, number, stream)


def count_states(study: optuna.Study) -> dict[TrialState, int]:
    counts = {state: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state] += 1
    return counts


def read_sweep_settings(task_cfg: DictConfig) -> SweepConfig:
    """The ``sweep`` settings, checked by SweepConfig itself (the check when no fuller one is given)."""
    return SweepConfig(**OmegaConf.to_container(task_cfg.sweep, resolve=True)) if "sweep" in task_cfg else SweepConfig()


def task_config(config: DictConfig) -> DictConfig:
    """The config a job's task function sees: the sweep's composed config without ``hydra``."""
    task_cfg = config.copy()
    with open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


class TotalTrialsImpl(OptunaSweeperImpl):
    """The plugin's implementation with vaelab's loop (Hydra loads it through
    hydra_plugins/vaelab_sweeper/total_trials.py).

    ``check_config`` checks the task's config (without ``hydra``) before the first trial, raising
    VaelabError, and returns its sweep settings. The shim passes the runs' full check, which
    vaelab.sweeps may not import (a lower layer).
    """

    def __init__(self, check_config: Callable[[DictConfig], SweepConfig] = read_sweep_settings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check_config = check_config
        self._in_flight: list[optuna.trial.Trial] = []
        self._last_failure = self._last_pruned = ""

    def sweep(self, arguments: list[str]) -> None:
        settings, url = self._checked_settings()
        self._process_searchspace_config()
        space, fixed_params, fixed_overrides = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        for name in fixed_params:
            space.pop(name, None)

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        try:
            storage = make_storage(url, settings.heartbeat_seconds, settings.stale_after_seconds)
        except VaelabError as exc:
            fail(EXIT_BAD_CONFIG, str(exc))
        directions = self._get_directions()
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=self.sampler, directions=directions, load_if_exists=True
        )
        study.set_user_attr("objectives", list(settings.objectives))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(settings.objectives))  # the dashboard's axis names
        if has_password(self.storage):
            log.warning(
                "hydra.sweeper.storage holds a password, which Hydra saves into every run's .hydra/hydra.yaml: "
                "export %s=<url> and give hydra.sweeper.storage=%s instead",
                STORAGE_ENV,
                STORAGE_FROM_ENV,
            )
        log.info("Study %s in %s: %d trials wanted in total, directions %s", study.study_name, masked(url), self.n_trials, directions)

        with interruptible():
            try:
                why_short, status = self._run(study, storage, settings, space, fixed_params, fixed_overrides, len(directions)), EXIT_GAVE_UP
                ignore_stop_signals()  # the loop is over: the report runs to its end
            except Interrupted as exc:
                why_short, status = self._stopped(study, exc), EXIT_ENDED_SHORT
            counts = count_states(study)
            if settings.report:
                self._write_report(sweep_dir)
        complete, failed, pruned = (counts[s] for s in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
        if why_short is None and complete >= self.n_trials:
            log.info("Sweep done: %d complete, %d failed", complete, failed)
            return
        fail(
            status,
            f"sweep {study.study_name}: {complete} of {self.n_trials} trials complete ({failed} failed, {pruned} pruned); {why_short}",
        )

    def _stopped(self, study: optuna.Study, exc: Interrupted) -> str:
        """Kill the workers, mark this process's running trials FAIL; the reason for the exit line."""
        left = stop_workers()
        for trial in self._in_flight:
            with contextlib.suppress(Exception):  # already told, or the database is gone: the stale rule applies
                study.tell(trial, state=TrialState.FAIL)
        return f"stopped by {exc}" + (f" ({left} worker processes would not die)" if left else "")

    def _checked_settings(self) -> tuple[SweepConfig, Any]:
        """The sweep settings and storage URL, checked before any trial; a bad one exits EXIT_BAD_CONFIG."""
        try:
            check(self.n_trials >= 0, "hydra.sweeper.n_trials", f"must be >= 0, got {self.n_trials}")
            check(self.n_jobs >= 1, "hydra.sweeper.n_jobs", f"must be >= 1, got {self.n_jobs}")
            task_cfg = task_config(self.config)
            settings, url = self.check_config(task_cfg), storage_url(self.storage)
            check_launcher(
                self.config.hydra.launcher, str(OmegaConf.select(task_cfg, "trainer.device", default="cpu")), settings.pruner, url
            )
            return settings, url
        except VaelabError as exc:
            fail(EXIT_BAD_CONFIG, str(exc))

    def _run(
        self, study: optuna.Study, storage, settings: SweepConfig, space: dict, fixed_params: dict, fixed_overrides: list, n_objectives: int
    ) -> str | None:
        """Run trials until the study holds the budget; why it stopped short (gave up), else None."""
        base_seed = self.config.hydra.sweeper.sampler.get("seed")
        # a job may run in another working directory (a Ray worker runs where `ray start` ran): each
        # gets the sweep directory, and so the default study file in it, as an absolute path
        job_sweep_dir = hydra_override("hydra.sweep.dir", str(Path(str(self.config.hydra.sweep.dir)).resolve()))
        failures = completed = pruned = 0
        while True:
            if isinstance(storage, optuna.storages.RDBStorage):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            counts = count_states(study)
            to_go = self.n_trials - counts[TrialState.COMPLETE] - counts[TrialState.RUNNING]
            if to_go <= 0:
                if counts[TrialState.RUNNING] == 0:
                    return None
                time.sleep(min(settings.heartbeat_seconds, 5))  # other workers (or a killed one going stale) still hold trials
                continue
            if (failures >= self.n_trials and completed == 0) or failures >= 10 * self.n_trials:
                return f"gave up after {failures} failed trials in this process (last: {self._last_failure})"
            if failures + pruned >= 10 * self.n_trials:  # the pruner stops nearly every trial: the space (or rule) is wrong
                return f"gave up after {pruned} pruned and {failures} failed trials in this process (last pruned: {self._last_pruned})"
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Heartbeat of storage")  # this loop beats for its trials itself
                self._in_flight = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            trials = self._drop_surplus(study, self._in_flight)
            if not trials:
                continue
            overrides = []
            for trial in trials:
                seed_for_trial(self.sampler, base_seed, trial.number)
                overrides += self._configure_trials([trial], space, fixed_params, fixed_overrides)
            overrides = [(*params, f"sweep_trial={trial.number}", job_sweep_dir) for params, trial in zip(overrides, trials)]
            with heartbeats(storage, trials, settings.heartbeat_seconds):
                try:
                    returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
                except Exception as exc:  # noqa: BLE001 - e.g. submitit: a SLURM job hit its time or memory limit
                    returns = [exc] * len(trials)
            self.job_idx += len(trials)
            for trial, ret in zip(trials, returns):
                state = self._tell(study, trial, ret, n_objectives)
                completed += state == TrialState.COMPLETE
                failures += state == TrialState.FAIL
                pruned += state == TrialState.PRUNED
            self._in_flight = []

    def _write_report(self, sweep_dir: Path) -> None:
        from .report import write_sweep_report

        try:
            write_sweep_report(sweep_dir)
        except Exception as exc:  # noqa: BLE001 - a report problem must not change how the sweep ended
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

    def _tell(self, study: optuna.Study, trial, ret, n_objectives: int) -> TrialState:
        """COMPLETE with the job's finite values, PRUNED when its pruner stopped it, else FAIL (also
        when the launcher itself raised: ``ret`` is then its exception); never raises."""
        try:
            if isinstance(ret, BaseException):
                raise RuntimeError(f"the launcher failed: {type(ret).__name__}: {ret}") from ret
            with contextlib.suppress(Exception):
                trial.set_user_attr("run_dir", str(ret.hydra_cfg.hydra.runtime.output_dir))
            if ret.status == JobStatus.FAILED:
                raise ret._return_value  # the job's exception (ret.return_value would also print the overrides to stderr)
            value = ret.return_value
            values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            if len(values) != n_objectives or not all(math.isfinite(v) for v in values):
                raise ValueError(f"expected {n_objectives} finite objective values, got {value!r}")
            study.tell(trial, values=values)
            return TrialState.COMPLETE
        except optuna.TrialPruned as exc:
            self._last_pruned = str(exc)
            log.info("Trial %d pruned: %s", trial.number, exc)
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        except Exception as exc:  # noqa: BLE001 - any job failure becomes a FAIL trial
            self._last_failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("Trial %d failed: %s", trial.number, self._last_failure)
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL)
            return TrialState.FAIL
