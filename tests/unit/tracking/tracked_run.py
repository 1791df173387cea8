"""Shared pieces of the tracker tests: a run directory as the pipeline leaves it, and its context."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from vaelab.tracking import RunContext

HISTORY = [{"epoch": e, "beta": 0.1 * (e + 1), "train_loss": 5.0 - e, "val_kl": 1.0 + e, "active_units": e} for e in range(3)]
RESULT = {"status": "ok", "kl": 3.0, "active_units": 2, "epochs_trained": 3, "factor_r2": {"trend": 0.5}, "kl_per_dim": [1.0, 2.0]}
CONFIG = {"loss": {"beta": 0.5}, "model": {"name": "multiscale", "latent_dim": 4}, "sweep": {"objectives": ["kl", "mi"]}, "note": None}


def write_run_dir(run_dir: Path, result: dict = RESULT) -> Path:
    """metrics.json, a latents file and one figure, as a finished run leaves them."""
    (run_dir / "plots").mkdir(parents=True)
    Image.fromarray(np.full((20, 30, 3), 200, dtype=np.uint8)).save(run_dir / "plots" / "kl_per_dim.png")
    (run_dir / "vae_latents.h5").write_bytes(b"latents")
    (run_dir / "metrics.json").write_text(json.dumps(result))
    return run_dir


def single_run(tmp_path: Path) -> RunContext:
    """A single run's context: the run directory under tmp_path/run, launched from tmp_path."""
    return RunContext(write_run_dir(tmp_path / "run"), CONFIG, launch_dir=tmp_path)
