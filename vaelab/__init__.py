"""vaelab: multi-scale Conv1D VAEs for ICU vital-sign trajectories that do not collapse.

The plan's public API, re-exported.
"""

from .builder import VAEBuilder
from .errors import VaelabError
from .losses import MultiScaleVAELoss, VAELoss
from .models import LSTMVAE, MultiScaleConv1DVAE, MultiScaleDecoder, MultiScaleEncoder
from .schedules import BetaSchedule

__all__ = [
    "BetaSchedule",
    "LSTMVAE",
    "MultiScaleConv1DVAE",
    "MultiScaleDecoder",
    "MultiScaleEncoder",
    "MultiScaleVAELoss",
    "VAEBuilder",
    "VAELoss",
    "VaelabError",
]
