"""What every vaelab VAE shares: masks as input, one output type, posterior-mean embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..errors import check, check_finite


def observed_inputs(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, time, vitals) -> (batch, time, 2 * vitals): zero-filled values beside the mask.

    Missing hours must not look like real zeros (docs/design-notes.md §1, defect 4), so the encoder
    always sees which entries were observed. Without a mask, finite entries count as observed.
    """
    if mask is None:
        mask = torch.isfinite(x).to(x.dtype)
    mask = mask.to(x.dtype)
    values = torch.where(mask > 0, torch.nan_to_num(x), torch.zeros_like(x))
    return torch.cat([values, mask], dim=-1)


@dataclass
class ModelConfig:
    """What every model takes besides the data's shape (vitals, hours)."""

    latent_dim: int = 32

    def __post_init__(self) -> None:
        check(self.latent_dim >= 1, "model.latent_dim", f"must be >= 1, got {self.latent_dim}")
        check_finite(self, "model")


@dataclass
class ConvModelConfig(ModelConfig):
    """What both multi-scale conv models (vaelab's and the plan's) take."""

    base_channels: int = 64
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.base_channels >= 4, "model.base_channels", f"must be >= 4, got {self.base_channels}")
        check(0.0 <= self.dropout < 1.0, "model.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class VAEOutput:
    """One forward pass: what the loss, the trainer and the evaluation read.

    ``branches`` holds each decoder branch's own reconstruction (empty for a model without
    branches); ``band_power`` and ``quantiles`` are the heads' predictions from the posterior
    mean (None for a model without that head).
    """

    recon: torch.Tensor  # (batch, time, vitals)
    mu: torch.Tensor  # (batch, latent_dim)
    logvar: torch.Tensor  # (batch, latent_dim)
    z: torch.Tensor  # the latent that was decoded: a sample, or mu when not sampling
    branches: list[torch.Tensor] = field(default_factory=list)
    band_power: torch.Tensor | None = None  # (batch, vitals, octave bands)
    quantiles: torch.Tensor | None = None  # (batch, vitals, quantile levels)
    observation: torch.Tensor | None = None  # (batch, vitals, observation blocks) predicted observed fractions


class VAEBase(nn.Module):
    """Forward contract shared by all models so one trainer trains them all.

    Subclasses implement ``encode_distribution(x, mask) -> (mu, logvar)`` and
    ``decode(z, return_branches) -> recon or (recon, branches)``; a model with heads overrides
    ``heads(mu) -> (band_power, quantiles, observation)``.
    """

    latent_dim: int
    seq_len: int
    has_heads: bool = False  # whether the loss needs the heads' targets (signal.head_targets)

    def encode_distribution(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, return_branches: bool = False):
        raise NotImplementedError

    def heads(self, mu: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(band power, quantiles, observed fractions) predicted from the posterior mean; a model
        without heads has none of them."""
        return None, None, None

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Sample z = mu + sigma * eps (the reparameterization trick)."""
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def forward_output(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> VAEOutput:
        """The whole forward pass; ``sample=False`` decodes the posterior mean (evaluation)."""
        mu, logvar = self.encode_distribution(x, mask)
        z = self.reparameterize(mu, logvar) if sample else mu
        recon, branches = self.decode(z, return_branches=True)
        band_power, quantiles, observation = self.heads(mu)
        return VAEOutput(recon, mu, logvar, z, list(branches), band_power, quantiles, observation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_branches: bool = False):
        """The plan's tuples: (recon, mu, logvar) or, with ``return_branches``, (recon, mu, logvar, branches)."""
        out = self.forward_output(x, mask)
        if return_branches:
            return out.recon, out.mu, out.logvar, out.branches
        return out.recon, out.mu, out.logvar

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """(z, mu, logvar) with z = mu: embeddings for downstream use are posterior means
        (docs/design-notes.md §1, defect 5); the return shape is the plan's."""
        mu, logvar = self.encode_distribution(x, mask)
        return mu, mu, logvar
