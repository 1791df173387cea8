"""The LSTM-VAE baseline the plan replaces (the model whose posterior collapsed).

A standard sequence VAE: an LSTM reads values and mask, its last hidden state gives (mu, logvar);
z sets the decoder LSTM's initial state and is fed at every step; a linear layer maps each step
back to the vitals. Same forward contract as the multi-scale VAE (it has no branches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import check
from .base import ModelConfig, VAEBase, observed_inputs


@dataclass
class LSTMConfig(ModelConfig):
    """The LSTM-VAE's settings (Hydra: ``model=lstm``)."""

    hidden_dim: int = 128
    n_layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.hidden_dim >= 1, "model.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        check(self.n_layers >= 1, "model.n_layers", f"must be >= 1, got {self.n_layers}")


class LSTMVAE(VAEBase):
    """``LSTMVAE(input_dim, hidden_dim, latent_dim, seq_len, n_layers)`` in the plan's order, or
    ``LSTMVAE(input_dim, seq_len=..., config=LSTMConfig(...))``."""

    Config = LSTMConfig

    def __init__(
        self,
        input_dim: int = 7,
        hidden_dim: int = LSTMConfig.hidden_dim,
        latent_dim: int = LSTMConfig.latent_dim,
        seq_len: int = 745,
        n_layers: int = LSTMConfig.n_layers,
        *,
        config: LSTMConfig | None = None,
    ):
        super().__init__()
        self.config = config = config if config is not None else LSTMConfig(latent_dim=latent_dim, hidden_dim=hidden_dim, n_layers=n_layers)
        hidden_dim, latent_dim, n_layers = config.hidden_dim, config.latent_dim, config.n_layers
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.seq_len = seq_len
        self.n_layers = n_layers
        self.encoder_lstm = nn.LSTM(2 * input_dim, hidden_dim, n_layers, batch_first=True)
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.fc_init = nn.Linear(latent_dim, hidden_dim * n_layers)
        self.decoder_lstm = nn.LSTM(latent_dim, hidden_dim, n_layers, batch_first=True)
        self.fc_out = nn.Linear(hidden_dim, input_dim)

    def encode_distribution(self, x, mask):
        _, (h_n, _) = self.encoder_lstm(observed_inputs(x, mask))
        h = h_n[-1]
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z, return_branches: bool = False):
        batch = z.shape[0]
        h0 = torch.tanh(self.fc_init(z)).view(batch, self.n_layers, self.hidden_dim).transpose(0, 1).contiguous()
        steps = z.unsqueeze(1).expand(batch, self.seq_len, self.latent_dim)
        out, _ = self.decoder_lstm(steps, (h0, torch.zeros_like(h0)))
        recon = self.fc_out(out)
        return (recon, []) if return_branches else recon
