"""Models and the one place that builds them by name."""

from __future__ import annotations

from ..errors import VaelabError
from .base import VAEBase
from .lstm import LSTMVAE
from .multiscale import MultiScaleConv1DVAE, MultiScaleDecoder, MultiScaleEncoder

MODEL_TYPES = ("multiscale_conv1d", "lstm", "plan_multiscale")


def build_model(
    model_type: str,
    input_dim: int,
    seq_len: int,
    latent_dim: int = 32,
    base_channels: int = 64,
    dropout: float = 0.2,
    hidden_dim: int = 128,
    n_layers: int = 2,
    latent_groups: bool = False,
    pooling: str = "moments",
    spectral_head: bool = False,
    posterior_bn: float = 0.0,
    quantile_head: bool = False,
) -> VAEBase:
    """A model by name: 'multiscale_conv1d' (vaelab's), 'lstm', or 'plan_multiscale' (the plan's
    original multi-scale model with its defects, for comparison only)."""
    if model_type == "multiscale_conv1d":
        return MultiScaleConv1DVAE(input_dim, seq_len, latent_dim, base_channels, dropout, latent_groups, pooling, spectral_head, posterior_bn,
                                   quantile_head)
    if model_type == "plan_multiscale":
        from .plan_baseline import PlanMultiScaleConv1DVAE

        return PlanMultiScaleConv1DVAE(input_dim, seq_len, latent_dim, base_channels, dropout)
    if model_type == "lstm":
        return LSTMVAE(input_dim, hidden_dim, latent_dim, seq_len, n_layers)
    raise VaelabError(f"model_type {model_type!r} is unknown; choose one of {', '.join(MODEL_TYPES)}")


__all__ = ["LSTMVAE", "MODEL_TYPES", "MultiScaleConv1DVAE", "MultiScaleDecoder", "MultiScaleEncoder", "VAEBase", "build_model"]
