"""Hydra callbacks: fail early and in one line when the output directory cannot be written.

Hydra creates the run (or sweep) directory itself, before the task runs, and reports a failure
with a traceback; this check runs first and exits with code 2 and one line naming the directory.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def _check_writable(directory: str) -> None:
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        print(f"vaelab: error: {path}: output directory is not writable ({exc.strerror or exc})", file=sys.stderr)
        sys.exit(2)


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(str(config.hydra.sweep.dir))
