"""Models: each with its Config beside it, and the registry that builds them by name."""

from __future__ import annotations

from .base import ConvModelConfig, ModelConfig, VAEBase, VAEOutput
from .lstm import LSTMVAE, LSTMConfig
from .multiscale import MultiScaleConfig, MultiScaleConv1DVAE, MultiScaleDecoder, MultiScaleEncoder
from .registry import MODEL_TYPES, MODELS, build_model, model_config, model_name

__all__ = [
    "ConvModelConfig",
    "LSTMConfig",
    "LSTMVAE",
    "MODELS",
    "MODEL_TYPES",
    "ModelConfig",
    "MultiScaleConfig",
    "MultiScaleConv1DVAE",
    "MultiScaleDecoder",
    "MultiScaleEncoder",
    "VAEBase",
    "VAEOutput",
    "build_model",
    "model_config",
    "model_name",
]
