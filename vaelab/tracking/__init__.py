"""Experiment trackers (Hydra group ``logger``): TensorBoard and MLflow, off by default.

``open_trackers`` opens the ones a run's ``LoggerConfig`` switches on; the pipeline logs each
epoch and the run's end to them. tensorboard and mlflow are imported only when switched on
(``pip install -e ".[tracking]"``).
"""

from .config import LOGGER_OPTIONS, LoggerConfig, MLflowConfig, RunContext, TensorBoardConfig
from .trackers import Trackers, open_trackers

__all__ = ["LOGGER_OPTIONS", "LoggerConfig", "MLflowConfig", "RunContext", "TensorBoardConfig", "Trackers", "open_trackers"]
