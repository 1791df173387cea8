"""A single run stopped by SIGTERM or SIGINT (a batch system's preemption, Ctrl-C) ends cleanly.

The first signal asks training to stop after the current batch and to write its state; the run
then exits with 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a process killed
by that signal would, and re-running the same command resumes it. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preemption:
    def __init__(self) -> None:
        self.signum: int | None = None

    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signum or 0)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # asked twice: stop now
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        self.signum = signum
        log.warning("%s received: training stops after the current batch and writes its state", signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Preemption]:
        """Handle SIGTERM and SIGINT while the block runs; the previous handlers come back after."""
        previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
