"""Training and applying models: the trainer, inference (embeddings, reconstructions), checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .inference import encode_posterior, reconstruct
from .trainer import TrainConfig, TrainingDiverged, TrainResult, evaluate, seed_everything, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "encode_posterior",
    "evaluate",
    "load_checkpoint",
    "reconstruct",
    "save_checkpoint",
    "seed_everything",
    "train",
]
