"""PNG figures of runs (training curves, KL per dimension, latent spread, reconstructions) and of
sweeps (KL heatmap, Pareto front, parameters against objectives), and the label probe table."""

from ..collapse import ACTIVE_STD_THRESHOLD
from .probes import plot_probe_table
from .run import (
    plot_kl_per_dim,
    plot_latent_spread,
    plot_reconstructions,
    plot_training_curves,
)
from .sweep import plot_kl_heatmap, plot_param_vs_objective, plot_pareto

__all__ = [
    "ACTIVE_STD_THRESHOLD",
    "plot_kl_heatmap",
    "plot_kl_per_dim",
    "plot_latent_spread",
    "plot_param_vs_objective",
    "plot_pareto",
    "plot_probe_table",
    "plot_reconstructions",
    "plot_training_curves",
]
