"""vaelab: multi-scale Conv1D VAEs for ICU vital-sign trajectories that do not collapse.

The plan's public API, re-exported, with the model registry and the checkpoint loader.
"""

from .builder import VAEBuilder
from .errors import VaelabError
from .losses import LossConfig, MultiScaleVAELoss, VAELoss
from .models import (
    LSTMVAE,
    LSTMConfig,
    MultiScaleConfig,
    MultiScaleConv1DVAE,
    MultiScaleDecoder,
    MultiScaleEncoder,
    VAEOutput,
    build_model,
)
from .schedules import BetaSchedule, ScheduleConfig
from .training.checkpoint import load_checkpoint

__all__ = [
    "BetaSchedule",
    "LSTMConfig",
    "LSTMVAE",
    "LossConfig",
    "MultiScaleConfig",
    "MultiScaleConv1DVAE",
    "MultiScaleDecoder",
    "MultiScaleEncoder",
    "MultiScaleVAELoss",
    "ScheduleConfig",
    "VAEBuilder",
    "VAELoss",
    "VAEOutput",
    "VaelabError",
    "build_model",
    "load_checkpoint",
]
