"""The run's trackers behind one guard: a tracker that raises is switched off with one warning line.

Logging never breaks training: any exception from a tracker (an unreachable server, an unwritable
store) is logged once, appended to ``errors`` (metrics.json's ``tracking_errors``) and that
tracker is dropped; the run goes on. Only a missing package is a VaelabError, raised before
anything is opened.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable
from typing import Protocol

from ..errors import VaelabError
from .config import LoggerConfig, RunContext

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300


class Tracker(Protocol):
    name: str

    def log_epoch(self, scalars: dict[str, float], step: int) -> None: ...

    def finish(self, result: dict) -> None: ...

    def close(self) -> None: ...


def require(option: str, package: str) -> None:
    """Import ``package`` or say which extra installs it."""
    try:
        importlib.import_module(package)
    except ImportError:
        raise VaelabError(f'logger={option} needs the {package} package: pip install -e ".[tracking]"') from None


class Trackers:
    """The open trackers; each call reaches every one of them, and a failing one is switched off."""

    def __init__(self) -> None:
        self.active: list[Tracker] = []
        self.errors: list[str] = []
        self._logged = 0  # history rows already logged

    def open(self, name: str, opener: Callable[[], Tracker]) -> None:
        try:
            self.active.append(opener())
        except Exception as exc:
            self._switch_off(name, exc)

    def _each(self, action: Callable[[Tracker], None]) -> None:
        for tracker in list(self.active):
            try:
                action(tracker)
            except Exception as exc:
                self.active.remove(tracker)
                self._switch_off(tracker.name, exc, tracker)

    def _switch_off(self, name: str, exc: Exception, tracker: Tracker | None = None) -> None:
        reason = " ".join(str(exc).split()) or "no message"
        message = f"logger={name} failed: {type(exc).__name__}: {reason}"[:MAX_ERROR_CHARS]
        log.warning("%s (%s is off for the rest of the run)", message, name)
        self.errors.append(message)
        if tracker is not None:
            with contextlib.suppress(Exception):
                tracker.close()

    def log_history(self, history: list[dict]) -> None:
        """Log the rows not logged yet (all of them on a resumed run's first epoch)."""
        from .content import epoch_scalars

        rows, self._logged = history[self._logged :], len(history)
        for row in rows:
            self._each(lambda t, row=row: t.log_epoch(epoch_scalars(row), int(row.get("epoch", 0))))

    def epoch_hook(self, inner: Callable[[list[dict]], None] | None) -> Callable[[list[dict]], None] | None:
        """The trainer's ``on_epoch``: log the epoch, then call ``inner`` (a sweep's pruner, whose
        TrainingPruned propagates)."""
        if not self.active:
            return inner

        def hook(history: list[dict]) -> None:
            self.log_history(history)
            if inner is not None:
                inner(history)

        return hook

    def finish(self, result: dict) -> None:
        """Log the run's end (any status) and close every tracker."""
        self._each(lambda t: t.finish(result))
        for tracker in self.active:
            with contextlib.suppress(Exception):
                tracker.close()
        self.active = []


def open_trackers(settings: LoggerConfig | None, context: RunContext) -> Trackers:
    """The trackers ``settings`` switch on, opened for this run (none when ``settings`` is None)."""
    trackers = Trackers()
    if settings is None:
        return trackers
    if settings.tensorboard is not None:
        require("tensorboard", "tensorboard")
    if settings.mlflow is not None:
        require("mlflow", "mlflow")
    if settings.tensorboard is not None:
        from .tensorboard_tracker import TensorBoardTracker

        trackers.open("tensorboard", lambda: TensorBoardTracker(settings.tensorboard, context))
    if settings.mlflow is not None:
        from .mlflow_tracker import MLflowTracker

        trackers.open("mlflow", lambda: MLflowTracker(settings.mlflow, context))
    return trackers
