"""What a run records in its directory, and when: stage timings, the outcome, failures, divergence.

metrics.json is written last, so its presence with ``status: ok`` means the run is complete; a run
that diverges or fails still leaves a complete metrics.json saying so.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pandas as pd

from ..errors import VaelabError
from ..io import HISTORY_FILE, METRICS_FILE, atomic_path, write_json
from ..training.trainer import TrainingDiverged, TrainingInterrupted, TrainingPruned

log = logging.getLogger(__name__)

_FIRST_RUN = True


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), i.e. interpreter + imports + Hydra before run()."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def write_history(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


class RunRecord:
    """The run's result dict (metrics.json's content) and its clock: seconds per stage, so a sweep's
    fixed cost per trial (everything but training) shows."""

    def __init__(self, output_dir: str | Path, **fields) -> None:
        global _FIRST_RUN
        self.output_dir = Path(output_dir)
        self.result: dict = {"status": "failed", "output_dir": str(self.output_dir), **fields}
        self.started = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}
        if _FIRST_RUN:  # process start-up (interpreter, imports, Hydra) is paid once per process, not per trial
            self.result["startup_seconds"] = process_age()
            _FIRST_RUN = False

    def note(self, message: str) -> None:
        """Something the run adapted to (a small cohort, ...): once in the log and in metrics.json's ``notes``."""
        log.info("note: %s", message)
        self.result.setdefault("notes", []).append(message)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now

    def finish(self) -> dict:
        """Close the clock and write metrics.json with ``status: ok``: the last file of the run."""
        self.lap("write")
        self.result["status"] = "ok"
        self.result["seconds"] = time.perf_counter() - self.started
        self.result["timings"] = self.laps
        self.result["fixed_seconds"] = self.result["seconds"] - self.laps["train"]  # everything a trial costs besides training
        write_json(self.output_dir / METRICS_FILE, self.result)
        return self.result

    def diverged(self, exc: TrainingDiverged) -> dict:
        """A diverged run is a result: metrics.json says so, history.csv keeps the epochs before."""
        self.result.update(
            status="diverged",
            error=str(exc),
            diverged_epoch=exc.epoch,
            epochs_trained=len(exc.history),
            train_seconds=time.perf_counter() - self.started,
        )
        write_history(self.output_dir / HISTORY_FILE, exc.history)
        write_json(self.output_dir / METRICS_FILE, self.result)
        log.warning("run diverged: %s", exc)
        return self.result

    def pruned(self, exc: TrainingPruned) -> dict:
        """Stopped by a sweep's pruner: a result like divergence; the directory keeps history.csv."""
        last = exc.history[-1] if exc.history else {}
        self.result.update(
            status="pruned",
            pruned_epoch=exc.epoch,
            pruned_reason=exc.reason,
            epochs_trained=len(exc.history),
            val_kl=last.get("val_kl"),
            val_active_units=last.get("active_units"),
            train_seconds=time.perf_counter() - self.started,
        )
        write_history(self.output_dir / HISTORY_FILE, exc.history)
        write_json(self.output_dir / METRICS_FILE, self.result)
        log.info("run pruned: %s", exc)
        return self.result

    def interrupted(self, exc: TrainingInterrupted) -> None:
        """Stopped on request: metrics.json says so and where; train_state.pt holds what resumes it."""
        self.result.update(status="interrupted", error=str(exc), interrupted_epoch=exc.epoch, interrupted_batch=exc.batches_done)
        write_json(self.output_dir / METRICS_FILE, self.result)

    def failed(self, exc: VaelabError) -> None:
        """metrics.json says ``status: failed`` and why, where the output directory allows it."""
        self.result["status"] = "failed"
        self.result["error"] = str(exc)
        try:
            write_json(self.output_dir / METRICS_FILE, self.result)
        except VaelabError:
            pass  # the output directory itself is the problem; the error says so
