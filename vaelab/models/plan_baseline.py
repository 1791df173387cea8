"""The user's ORIGINAL multi-scale Conv1D VAE (docs/seed-plan.md Tasks 1-3), re-implemented as written.

Kept ONLY as a baseline (``model=plan``, ``benchmarks/speed.py``); it is deliberately not exported
from ``vaelab`` and must not be used for real work. Every defect of the plan's
code that docs/design-notes.md §1 lists is kept on purpose, so the benchmark compares against what the user
would otherwise have run:

- the decoder starts every branch from length 8, so for seq_len 745 the local, hourly and daily
  branches make only 512 real steps and ``_adjust_length`` fills the last 233 with a replicated
  value (defect 1); the multi-day branch makes 1024 steps and is trimmed;
- the transposed-conv kernel/stride pairs are the plan's (5/2, 15/4, 31/8, 63/16, 63/8: uneven
  overlap, defect 9), and the decoder's first projection has no activation;
- every encoder branch ends in global average pooling (defect 8);
- the observation mask is ignored: the encoder sees the zero-filled values only (defect 4);
- ``encode`` samples z (defect 5).

Only the plumbing differs: the model subclasses ``VAEBase`` (``encode_distribution`` / ``decode``)
so that ``vaelab.training.train`` and ``MultiScaleVAELoss`` train it exactly like vaelab's models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ConvModelConfig, VAEBase


class PlanConvBlock(nn.Module):
    """Conv1D + BatchNorm + LeakyReLU + Dropout, padding kernel // 2 (the plan's ConvBlock)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(0.2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.bn(self.conv(x))))


class PlanTransposeConvBlock(nn.Module):
    """ConvTranspose1D (padding kernel // 2, output_padding stride - 1) + BN + LeakyReLU + Dropout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 2, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.ConvTranspose1d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, output_padding=stride - 1
        )
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(0.2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.bn(self.conv(x))))


class PlanMultiScaleEncoder(nn.Module):
    """The plan's encoder: four strided branches, each globally average-pooled; the mask is unused."""

    def __init__(self, input_dim: int = 7, seq_len: int = 745, latent_dim: int = 32, base_channels: int = 64, dropout: float = 0.2):
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        c = base_channels
        self.branch_local = nn.Sequential(
            PlanConvBlock(input_dim, c // 2, kernel_size=3, stride=2, dropout=dropout),
            PlanConvBlock(c // 2, c, kernel_size=5, stride=2, dropout=dropout),
            PlanConvBlock(c, c, kernel_size=5, stride=2, dropout=dropout),
            nn.AdaptiveAvgPool1d(1),
        )
        self.branch_hourly = nn.Sequential(
            PlanConvBlock(input_dim, c // 2, kernel_size=15, stride=4, dropout=dropout),
            PlanConvBlock(c // 2, c, kernel_size=31, stride=4, dropout=dropout),
            nn.AdaptiveAvgPool1d(1),
        )
        self.branch_daily = nn.Sequential(
            PlanConvBlock(input_dim, c // 2, kernel_size=63, stride=8, dropout=dropout),
            PlanConvBlock(c // 2, c, kernel_size=127, stride=8, dropout=dropout),
            nn.AdaptiveAvgPool1d(1),
        )
        self.branch_multiday = nn.Sequential(
            PlanConvBlock(input_dim, c, kernel_size=255, stride=16, dropout=dropout),
            nn.AdaptiveAvgPool1d(1),
        )
        self.fc_merge = nn.Linear(c * 4, c * 2)
        self.fc_mu = nn.Linear(c * 2, latent_dim)
        self.fc_logvar = nn.Linear(c * 2, latent_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, seq_len, input_dim) -> mu, logvar (batch, latent_dim). ``mask`` is ignored, as in the plan."""
        x = x.transpose(1, 2)
        h = torch.cat(
            [
                self.branch_local(x).squeeze(-1),
                self.branch_hourly(x).squeeze(-1),
                self.branch_daily(x).squeeze(-1),
                self.branch_multiday(x).squeeze(-1),
            ],
            dim=1,
        )
        h = F.leaky_relu(self.fc_merge(h), 0.2)
        return self.fc_mu(h), self.fc_logvar(h)


class PlanMultiScaleDecoder(nn.Module):
    """The plan's decoder: every branch upsamples from length 8, then is trimmed or replicate-padded."""

    START_LENGTH = 8

    def __init__(self, output_dim: int = 7, seq_len: int = 745, latent_dim: int = 32, base_channels: int = 64, dropout: float = 0.2):
        super().__init__()
        self.output_dim = output_dim
        self.seq_len = seq_len
        c = base_channels
        self.c = c
        self.fc = nn.Linear(latent_dim, c * 4 * self.START_LENGTH)
        self.branch_local = nn.Sequential(
            PlanTransposeConvBlock(c, c, kernel_size=5, stride=2, dropout=dropout),
            PlanTransposeConvBlock(c, c // 2, kernel_size=5, stride=2, dropout=dropout),
            PlanTransposeConvBlock(c // 2, c // 2, kernel_size=5, stride=2, dropout=dropout),
            PlanTransposeConvBlock(c // 2, c // 4, kernel_size=5, stride=2, dropout=dropout),
            PlanTransposeConvBlock(c // 4, c // 4, kernel_size=5, stride=2, dropout=dropout),
            PlanTransposeConvBlock(c // 4, c // 4, kernel_size=5, stride=2, dropout=dropout),
        )
        self.out_local = nn.Conv1d(c // 4, output_dim, kernel_size=3, padding=1)
        self.branch_hourly = nn.Sequential(
            PlanTransposeConvBlock(c, c, kernel_size=15, stride=4, dropout=dropout),
            PlanTransposeConvBlock(c, c // 2, kernel_size=15, stride=4, dropout=dropout),
            PlanTransposeConvBlock(c // 2, c // 4, kernel_size=15, stride=4, dropout=dropout),
        )
        self.out_hourly = nn.Conv1d(c // 4, output_dim, kernel_size=3, padding=1)
        self.branch_daily = nn.Sequential(
            PlanTransposeConvBlock(c, c, kernel_size=31, stride=8, dropout=dropout),
            PlanTransposeConvBlock(c, c // 2, kernel_size=31, stride=8, dropout=dropout),
        )
        self.out_daily = nn.Conv1d(c // 2, output_dim, kernel_size=3, padding=1)
        self.branch_multiday = nn.Sequential(
            PlanTransposeConvBlock(c, c // 2, kernel_size=63, stride=16, dropout=dropout),
            PlanTransposeConvBlock(c // 2, c // 4, kernel_size=63, stride=8, dropout=dropout),
        )
        self.out_multiday = nn.Conv1d(c // 4, output_dim, kernel_size=3, padding=1)
        self.merge = nn.Conv1d(output_dim * 4, output_dim, kernel_size=1)

    @staticmethod
    def _adjust_length(x: torch.Tensor, target_len: int) -> torch.Tensor:
        """Trim, or pad the end by replicating the last step (the plan's defect 1)."""
        current_len = x.shape[2]
        if current_len > target_len:
            return x[:, :, :target_len]
        if current_len < target_len:
            return F.pad(x, (0, target_len - current_len), mode="replicate")
        return x

    def forward(self, z: torch.Tensor, return_branches: bool = False):
        """z: (batch, latent_dim) -> recon (batch, seq_len, output_dim) [, list of 4 branch outputs]."""
        c = self.c
        h = self.fc(z).view(z.shape[0], c * 4, self.START_LENGTH)
        outputs = [
            self.out_local(self.branch_local(h[:, :c])),
            self.out_hourly(self.branch_hourly(h[:, c : 2 * c])),
            self.out_daily(self.branch_daily(h[:, 2 * c : 3 * c])),
            self.out_multiday(self.branch_multiday(h[:, 3 * c :])),
        ]
        outputs = [self._adjust_length(out, self.seq_len) for out in outputs]
        recon = self.merge(torch.cat(outputs, dim=1)).transpose(1, 2)
        if return_branches:
            return recon, [out.transpose(1, 2) for out in outputs]
        return recon


@dataclass
class PlanConfig(ConvModelConfig):
    """The plan's model takes only the plan's three settings (Hydra: ``model=plan``)."""


class PlanMultiScaleConv1DVAE(VAEBase):
    """The plan's MultiScaleConv1DVAE, trainable by ``vaelab.training.train``; a baseline only."""

    Config = PlanConfig

    def __init__(self, input_dim: int = 7, seq_len: int = 745, *args, config: PlanConfig | None = None, **options):
        super().__init__()
        if config is not None and (args or options):
            raise TypeError("pass either config or its fields, not both")
        self.config = config = config if config is not None else PlanConfig(*args, **options)
        self.input_dim = input_dim
        self.latent_dim = config.latent_dim
        self.seq_len = seq_len
        self.encoder = PlanMultiScaleEncoder(input_dim, seq_len, config.latent_dim, config.base_channels, config.dropout)
        self.decoder = PlanMultiScaleDecoder(input_dim, seq_len, config.latent_dim, config.base_channels, config.dropout)

    def encode_distribution(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, mask)

    def decode(self, z: torch.Tensor, return_branches: bool = False):
        return self.decoder(z, return_branches=return_branches)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """(z, mu, logvar) with z *sampled*, as the plan wrote it (defect 5)."""
        mu, logvar = self.encoder(x, mask)
        return self.reparameterize(mu, logvar), mu, logvar
