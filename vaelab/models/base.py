"""What every vaelab VAE shares: masks as input, reparameterization, posterior-mean embeddings."""

from __future__ import annotations

import torch
import torch.nn as nn


def observed_inputs(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, time, vitals) -> (batch, time, 2 * vitals): zero-filled values beside the mask.

    Missing hours must not look like real zeros (NOTES.md §1, defect 4), so the encoder always sees
    which entries were observed. Without a mask, finite entries count as observed.
    """
    if mask is None:
        mask = torch.isfinite(x).to(x.dtype)
    mask = mask.to(x.dtype)
    values = torch.where(mask > 0, torch.nan_to_num(x), torch.zeros_like(x))
    return torch.cat([values, mask], dim=-1)


class VAEBase(nn.Module):
    """Forward contract shared by all models so one trainer trains them all.

    Subclasses implement ``encode_distribution(x, mask) -> (mu, logvar)`` and
    ``decode(z, return_branches) -> recon or (recon, branches)``.
    """

    latent_dim: int
    seq_len: int

    def encode_distribution(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, return_branches: bool = False):
        raise NotImplementedError

    def band_power(self, mu: torch.Tensor) -> torch.Tensor | None:
        """A spectral head's prediction of the data's log band power from the posterior mean
        (batch, vitals, bands), or None for a model without one (the default)."""
        return None

    def value_quantiles(self, mu: torch.Tensor) -> torch.Tensor | None:
        """A quantile head's prediction of each vital's quantiles over the observed hours from the
        posterior mean (batch, vitals, levels), or None for a model without one (the default)."""
        return None

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Sample z = mu + sigma * eps (the reparameterization trick)."""
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_branches: bool = False):
        """(recon, mu, logvar) or, with ``return_branches``, (recon, mu, logvar, branches)."""
        mu, logvar = self.encode_distribution(x, mask)
        z = self.reparameterize(mu, logvar)
        if return_branches:
            recon, branches = self.decode(z, return_branches=True)
            return recon, mu, logvar, branches
        return self.decode(z), mu, logvar

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """(z, mu, logvar) with z = mu: embeddings for downstream use are posterior means
        (NOTES.md §1, defect 5); the return shape is the plan's."""
        mu, logvar = self.encode_distribution(x, mask)
        return mu, mu, logvar
