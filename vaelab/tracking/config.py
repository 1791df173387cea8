"""The ``logger`` group's settings (Hydra: ``logger=tensorboard|mlflow|many``) and the run they apply to.

``cfg.logger`` maps a tracker's name to its settings, as in lightning-hydra-template: each option
sets only its own key, so a list of options (``logger=[tensorboard,mlflow]``) adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import check


@dataclass
class TensorBoardConfig:
    """``logger=tensorboard``: event files in ``<run dir>/tensorboard/``."""

    images: bool = True  # the run's figures (plots/*.png) as images


@dataclass
class MLflowConfig:
    """``logger=mlflow``: one MLflow run per vaelab run; a sweep is a parent run with one child per trial."""

    tracking_uri: Optional[str] = None  # None: sqlite:///<sweep dir or ./outputs>/mlflow.db
    experiment_name: str = "vaelab"
    artifacts: bool = True  # copy metrics.json, plots/ and the latents file into the MLflow run

    def __post_init__(self) -> None:
        check(bool(self.experiment_name.strip()), "logger.mlflow.experiment_name", "must not be empty")


@dataclass
class LoggerConfig:
    """Which trackers a run feeds; a tracker left at None is off."""

    tensorboard: Optional[TensorBoardConfig] = None
    mlflow: Optional[MLflowConfig] = None


# The group's options: Hydra merges them into ExperimentConfig.logger (a LoggerConfig).
LOGGER_OPTIONS: dict[str, dict[str, Any]] = {
    "tensorboard": {"tensorboard": TensorBoardConfig},
    "mlflow": {"mlflow": MLflowConfig},
    "many": {"tensorboard": TensorBoardConfig, "mlflow": MLflowConfig},
}


@dataclass(frozen=True)
class RunContext:
    """What a tracker knows about the run it records."""

    run_dir: Path
    config: dict  # the run's config, logged as parameters
    launch_dir: Path  # where the command ran: a single run's default MLflow store is <launch_dir>/outputs/mlflow.db
    sweep_dir: Optional[Path] = None  # a sweep trial's sweep directory (its default MLflow store, its parent run)
    trial: Optional[int] = None  # the sweep trial's number
