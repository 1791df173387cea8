"""``logger=tensorboard``: a SummaryWriter on ``<run dir>/tensorboard/``.

Each epoch's history.csv columns are scalars (step = epoch); at the end the flattened config goes
in as hparams with the final metrics, and the run's figures as images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import PLOTS_DIR
from .config import RunContext, TensorBoardConfig
from .content import final_metrics, flatten, is_number, text

LOG_DIR = "tensorboard"


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, settings: TensorBoardConfig, context: RunContext) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.settings, self.context = settings, context
        self.writer = SummaryWriter(log_dir=str(context.run_dir / LOG_DIR))

    def log_epoch(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # a live TensorBoard shows the epoch now, not after flush_secs

    def finish(self, result: dict) -> None:
        step = int(result.get("epochs_trained") or 0)
        hparams = {
            key: value if is_number(value) or isinstance(value, (bool, str)) else text(value)
            for key, value in flatten(self.context.config).items()
        }
        # run_name ".": the hparams session and its metrics join this run's directory instead of a new sub-run
        self.writer.add_hparams(hparams, final_metrics(result), run_name=".", global_step=step)
        if self.settings.images:
            for png in sorted((Path(self.context.run_dir) / PLOTS_DIR).glob("*.png")):
                self.writer.add_image(f"{PLOTS_DIR}/{png.stem}", read_png(png), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_png(path: Path) -> np.ndarray:
    """A PNG as an (height, width, 3) uint8 array."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
