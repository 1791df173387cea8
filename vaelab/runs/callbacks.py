"""Hydra callbacks: fail early and in one line when the output directory cannot be written.

Hydra creates the run (or sweep) directory itself and writes ``.hydra/*.yaml`` into it before the
task runs, and reports a failure with a traceback; this check runs first (it writes and syncs a
probe larger than those files, so a full disk is caught too) and exits with code 2 and one line
naming the directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PROBE_BYTES = 64 * 1024  # more than Hydra's .hydra/*.yaml files together


def _check_writable(directory: str) -> None:
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:  # unnamed, gone when closed
            probe.write(bytes(PROBE_BYTES))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        print(f"vaelab: error: {path}: output directory is not writable ({exc.strerror or exc})", file=sys.stderr)
        sys.exit(2)


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(str(config.hydra.sweep.dir))
