"""The sweep report, written when a sweep ends: the table, the Pareto front, parameters vs
objectives and KL per dimension across runs — all read back from the run directories and the
study, never from in-process state."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def write_sweep_report(sweep_dir: Path) -> Path | None:
    """Placeholder until vaelab.results lands."""
    return None
