"""vaelab's multi-scale Conv1D VAE: the plan's model with its defects fixed (docs/design-notes.md §1).

Encoder: four parallel branches (local, hourly, daily, multi-day receptive fields) over the
observed values *and* the observation mask. Each branch ends in a pooling that keeps time
information (mean, linear trend, and the 24 h Fourier component where the branch's resolution
allows), because plain global average pooling discards where a daily rhythm peaks (defect 8).

Decoder: each branch starts from ``ceil(seq_len / total_stride)`` positions, so it produces at
least ``seq_len`` real steps for any length before trimming (defect 1); upsampling uses
transposed convolutions whose kernel is twice the stride, so every output step gets the same
number of taps (no checkerboard artefacts, defect 9).

Cost: the coarse encoder branches average their input over 2/4/8 h windows before their long
kernels (same receptive fields for a fraction of the FLOPs); the last upsampling of every decoder
branch is a bare transposed convolution straight to the vitals, so no hidden layer runs at full
resolution; dropout draws its mask with one ``rand_like`` compare instead of ``bernoulli_``.

Options (``MultiScaleConfig``): ``latent_groups`` splits the latent into one group per branch,
each decoder branch decoding its own group only; ``pooling="moments_std"`` adds each channel's
spread over time to the pooled features; ``posterior_bn`` batch-normalizes the posterior means
(BN-VAE, Zhu et al. 2020), a floor under every dimension's expected KL; the spectral and quantile
heads predict per-patient summaries of the data from the posterior mean, which asks the latent for
what MSE on the time course never rewards (how strongly and how often a patient fluctuates).

Short sequences: a kernel longer than the (downsampled) sequence it sees is shrunk to the longest
odd length that fits, so every branch builds and trains for any ``seq_len`` >= 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import VaelabError, check
from ..signal import QUANTILE_LEVELS, n_observation_blocks, n_octave_bands
from .base import ConvModelConfig, VAEBase, observed_inputs

DAY_HOURS = 24
BRANCHES = ("local", "hourly", "daily", "multiday")

# Each encoder branch first averages its input over non-overlapping windows of this many hours
# (zero-filled values and mask alike, so the mask channels become observed fractions), then convolves:
# the long kernels of the coarse branches see the same hours for a fraction of the cost.
ENCODER_POOL = {"local": 1, "hourly": 2, "daily": 4, "multiday": 8}
# Encoder layers per branch after that pooling: (output channels as a fraction of base_channels,
# kernel, stride). Receptive fields in hours: local 5/13/29, hourly 14/70, daily 60/188,
# multiday 120/344 -- those of kernels 15, 63 and 127 at full resolution, for a fraction of the FLOPs.
ENCODER_LAYERS = {
    "local": [(0.5, 5, 2), (1, 5, 2), (1, 5, 2)],
    "hourly": [(0.5, 7, 2), (1, 15, 2)],
    "daily": [(0.5, 15, 2), (1, 17, 1)],
    "multiday": [(0.5, 15, 2), (1, 15, 2)],
}
# Decoder layers per branch: (output channels as a fraction of base_channels, upsampling factor).
DECODER_LAYERS = {
    "local": [(0.5, 2), (0.25, 2), (0.25, 2)],
    "hourly": [(0.5, 4), (0.25, 4)],
    "daily": [(0.5, 8), (0.25, 8)],
    "multiday": [(0.5, 16), (0.25, 8)],
}


def fit_kernel(kernel_size: int, length: int) -> int:
    """The longest odd kernel no longer than ``kernel_size`` or the sequence it convolves."""
    k = min(kernel_size, max(1, length))
    return k if k % 2 == 1 else k - 1


def conv_output_length(length: int, kernel_size: int, stride: int) -> int:
    return (length + 2 * (kernel_size // 2) - kernel_size) // stride + 1


POOLINGS = ("moments", "moments_std")


@dataclass
class MultiScaleConfig(ConvModelConfig):
    """The multi-scale VAE's settings (Hydra: ``model=multiscale``); the defaults are vaelab's
    recommended model (experiments/multiscale_recovery, experiments/physionet2019), for the CLI,
    VAEBuilder and the class alike."""

    latent_dim: int = 256  # real stays: validation sepsis probe 0.826 against 0.816 at 64, 0.790 at 32 (experiments/physionet2019)
    latent_groups: bool = False  # one latent group per branch; each decoder branch decodes its own group
    pooling: str = "moments"  # moments (mean, trend, 24 h cos/sin) | moments_std (+ spread over time)
    spectral_head: bool = True  # predict each vital's log band power from the posterior mean (loss.band_power_weight)
    quantile_head: bool = True  # predict each vital's quantiles over the observed hours (loss.quantile_weight)
    observation_head: bool = True  # predict each vital's observed fraction per 8 h block (loss.observation_weight)
    posterior_bn: float = 0.6  # BN-VAE: batch-normalize posterior means to this fixed spread (0 = off)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.pooling in POOLINGS, "model.pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        check(self.posterior_bn >= 0.0, "model.posterior_bn", f"must be >= 0 (0 = off), got {self.posterior_bn}")
        check(
            not self.latent_groups or self.latent_dim >= len(BRANCHES),
            "model.latent_groups",
            f"needs latent_dim >= {len(BRANCHES)} (one dimension per branch), got {self.latent_dim}; "
            "set model.latent_groups=false for a smaller latent",
        )


def _channels(base_channels: int, fraction: float) -> int:
    return max(1, int(round(base_channels * fraction)))


class Dropout(nn.Module):
    """Element-wise dropout like ``nn.Dropout``, with the mask drawn by one uniform compare.

    Same distribution and scaling as ``nn.Dropout``; on CPU ``bernoulli_`` costs more than the
    convolutions it follows, a ``rand_like`` compare a fraction of that.
    """

    def __init__(self, p: float = 0.2):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x).ge_(self.p)
        return x * keep.mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PosteriorBatchNorm(nn.Module):
    """BN-VAE: posterior means batch-normalized to a FIXED scale ``gamma`` plus a learned shift.

    Over a batch each dimension's means then have spread ``gamma``, so the expected KL per
    dimension is at least ``gamma**2 / 2`` nats: the optimizer cannot collapse a dimension by
    shrinking its means, only by making them uninformative noise, which the decoder punishes.
    Evaluation uses the running statistics, like any batch norm.
    """

    def __init__(self, latent_dim: int, gamma: float):
        super().__init__()
        if not gamma > 0:
            raise VaelabError(f"posterior_bn (the BN-VAE scale) must be > 0, got {gamma}")
        self.gamma = float(gamma)
        self.norm = nn.BatchNorm1d(latent_dim, affine=False)
        self.shift = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        if self.training and mu.shape[0] == 1:  # a batch of one has no spread: use the running statistics
            n = self.norm
            return self.gamma * F.batch_norm(mu, n.running_mean, n.running_var, training=False, eps=n.eps) + self.shift
        return self.gamma * self.norm(mu) + self.shift

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class ConvBlock(nn.Module):
    """Conv1D + BatchNorm + LeakyReLU + Dropout (the plan's block)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.bn(self.conv(x))))


class TransposeConvBlock(nn.Module):
    """Upsample by ``stride`` with a transposed conv of kernel 2 * stride (even overlap), BN, LeakyReLU, Dropout."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, dropout: float = 0.2):
        super().__init__()
        kernel_size, padding = (2 * stride, stride // 2) if stride > 1 else (3, 1)
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.bn(self.conv(x))))


class TemporalPool(nn.Module):
    """Pool (batch, channels, positions) to a vector that still knows *when* things happen.

    Per channel: the mean, the projection on a centred linear trend, and — when the positions are
    dense enough to resolve a day (stride < 12 h) — the projections on cos/sin of the 24 h cycle,
    i.e. a daily rhythm's amplitude and phase, which a global average would cancel out.
    """

    def __init__(self, stride: int, with_std: bool = False):
        super().__init__()
        self.stride = stride
        self.daily = 2 * stride < DAY_HOURS
        self.with_std = with_std
        self.n_moments = (4 if self.daily else 2) + int(with_std)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        length = h.shape[-1]
        hours = torch.arange(length, device=h.device, dtype=h.dtype) * self.stride
        trend = hours - hours.mean()
        trend = trend / trend.pow(2).mean().sqrt().clamp_min(1e-6)
        moments = [h.mean(-1), (h * trend).mean(-1)]
        if self.daily:
            angle = 2 * math.pi * hours / DAY_HOURS
            moments += [2 * (h * torch.cos(angle)).mean(-1), 2 * (h * torch.sin(angle)).mean(-1)]
        if self.with_std:
            moments.append(h.std(-1, unbiased=False) if length > 1 else torch.zeros_like(moments[0]))
        return torch.cat(moments, dim=1)


class EncoderBranch(nn.Module):
    """Strided conv blocks with kernels fitted to the sequence, then a temporal pool."""

    def __init__(
        self, in_channels: int, seq_len: int, base_channels: int, layers, dropout: float, pooling: str = "moments", input_pool: int = 1
    ):
        super().__init__()
        self.input_pool = input_pool
        blocks, channels, length, total_stride = [], in_channels, math.ceil(seq_len / input_pool), input_pool
        for fraction, kernel, stride in layers:
            out = _channels(base_channels, fraction)
            k = fit_kernel(kernel, length)
            blocks.append(ConvBlock(channels, out, k, stride=stride, dropout=dropout))
            channels, length, total_stride = out, conv_output_length(length, k, stride), total_stride * stride
        self.convs = nn.Sequential(*blocks)
        self.pool = TemporalPool(total_stride, with_std=pooling == "moments_std")
        self.out_features = channels * self.pool.n_moments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_pool > 1:
            x = F.avg_pool1d(x, self.input_pool, self.input_pool, ceil_mode=True)
        return self.pool(self.convs(x))


class DecoderBranch(nn.Module):
    """Latent -> (channels, start length) -> transposed-conv upsampling -> one output per vital.

    The last upsampling maps straight to the vitals (no activation), so no hidden layer runs at
    full resolution (a full-resolution block costs about a third of the training time for no better
    reconstruction; experiments/multiscale_recovery).
    """

    def __init__(self, latent_dim: int, seq_len: int, output_dim: int, base_channels: int, layers, dropout: float):
        super().__init__()
        self.total_stride = math.prod(up for _, up in layers)
        self.start_length = math.ceil(seq_len / self.total_stride)
        self.start_channels = base_channels
        self.fc = nn.Linear(latent_dim, base_channels * self.start_length)
        blocks, channels = [], base_channels
        for fraction, up in layers[:-1]:
            out = _channels(base_channels, fraction)
            blocks.append(TransposeConvBlock(channels, out, stride=up, dropout=dropout))
            channels = out
        self.upsample = nn.Sequential(*blocks)
        up = layers[-1][1]
        kernel_size, padding = (2 * up, up // 2) if up > 1 else (3, 1)
        self.out = nn.ConvTranspose1d(channels, output_dim, kernel_size, stride=up, padding=padding)

    def forward(self, z: torch.Tensor, seq_len: int) -> torch.Tensor:
        h = F.leaky_relu(self.fc(z), 0.2).view(z.shape[0], self.start_channels, self.start_length)
        return self.out(self.upsample(h))[:, :, :seq_len]


def latent_group_sizes(latent_dim: int, n_groups: int) -> list[int]:
    """Split ``latent_dim`` into ``n_groups`` near-equal groups (the first ones get the remainder)."""
    if latent_dim < n_groups:
        raise VaelabError(f"latent_groups needs latent_dim >= {n_groups} (one dimension per branch), got {latent_dim}")
    base, extra = divmod(latent_dim, n_groups)
    return [base + (i < extra) for i in range(n_groups)]


class MultiScaleEncoder(nn.Module):
    """Four parallel branches over values and mask -> (mu, logvar)."""

    def __init__(
        self,
        input_dim: int = 7,
        seq_len: int = 745,
        latent_dim: int = MultiScaleConfig.latent_dim,
        base_channels: int = MultiScaleConfig.base_channels,
        dropout: float = MultiScaleConfig.dropout,
        pooling: str = MultiScaleConfig.pooling,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise VaelabError(f"pooling {pooling!r} is unknown; choose one of {', '.join(POOLINGS)}")
        self.input_dim = input_dim
        self.seq_len = seq_len
        self.latent_dim = latent_dim
        for name in BRANCHES:
            branch = EncoderBranch(2 * input_dim, seq_len, base_channels, ENCODER_LAYERS[name], dropout, pooling, ENCODER_POOL[name])
            setattr(self, f"branch_{name}", branch)
        features = sum(self._branch(name).out_features for name in BRANCHES)
        self.fc_merge = nn.Linear(features, base_channels * 2)
        self.fc_mu = nn.Linear(base_channels * 2, latent_dim)
        self.fc_logvar = nn.Linear(base_channels * 2, latent_dim)

    def _branch(self, name: str) -> nn.Module:
        return getattr(self, f"branch_{name}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x, mask: (batch, seq_len, input_dim) -> mu, logvar: (batch, latent_dim)."""
        h = observed_inputs(x, mask).transpose(1, 2)
        h = torch.cat([self._branch(name)(h) for name in BRANCHES], dim=1)
        h = F.leaky_relu(self.fc_merge(h), 0.2)
        return self.fc_mu(h), self.fc_logvar(h)


class MultiScaleDecoder(nn.Module):
    """Four parallel upsampling branches, merged by a 1x1 conv; per-branch outputs on request.

    With ``latent_groups`` branch i decodes only from its own slice of z (sizes from
    ``latent_group_sizes``, in BRANCHES order); otherwise every branch sees all of z.
    """

    def __init__(
        self,
        output_dim: int = 7,
        seq_len: int = 745,
        latent_dim: int = MultiScaleConfig.latent_dim,
        base_channels: int = MultiScaleConfig.base_channels,
        dropout: float = MultiScaleConfig.dropout,
        latent_groups: bool = MultiScaleConfig.latent_groups,
    ):
        super().__init__()
        self.output_dim = output_dim
        self.seq_len = seq_len
        sizes = latent_group_sizes(latent_dim, len(BRANCHES)) if latent_groups else [latent_dim] * len(BRANCHES)
        starts = [sum(sizes[:i]) for i in range(len(sizes))] if latent_groups else [0] * len(BRANCHES)
        self.latent_slices = [(start, start + size) for start, size in zip(starts, sizes)]
        for name, size in zip(BRANCHES, sizes):
            branch = DecoderBranch(size, seq_len, output_dim, base_channels, DECODER_LAYERS[name], dropout)
            setattr(self, f"branch_{name}", branch)
        self.merge = nn.Conv1d(output_dim * len(BRANCHES), output_dim, kernel_size=1)

    def forward(self, z: torch.Tensor, return_branches: bool = False):
        """z: (batch, latent_dim) -> recon (batch, seq_len, output_dim) [, list of 4 branch outputs]."""
        outputs = [getattr(self, f"branch_{name}")(z[:, a:b], self.seq_len) for name, (a, b) in zip(BRANCHES, self.latent_slices)]
        recon = self.merge(torch.cat(outputs, dim=1)).transpose(1, 2)
        if return_branches:
            return recon, [out.transpose(1, 2) for out in outputs]
        return recon


def _summary_head(latent_dim: int, base_channels: int, outputs: int) -> nn.Module:
    """A small MLP from the posterior mean to per-patient summaries of the data (spectral, quantile heads)."""
    return nn.Sequential(nn.Linear(latent_dim, 2 * base_channels), nn.LeakyReLU(0.2), nn.Linear(2 * base_channels, outputs))


class MultiScaleConv1DVAE(VAEBase):
    """Multi-scale encoder + symmetric decoder; trained with per-branch reconstruction loss.

    ``MultiScaleConv1DVAE(input_dim, seq_len, latent_dim, base_channels, dropout, **options)``: the
    arguments after ``seq_len`` are ``MultiScaleConfig``'s fields (the plan's three positionally,
    the options by keyword), or one ``config=MultiScaleConfig(...)``.
    """

    Config = MultiScaleConfig

    def __init__(self, input_dim: int = 7, seq_len: int = 745, *args, config: MultiScaleConfig | None = None, **options):
        super().__init__()
        if config is not None and (args or options):
            raise TypeError("pass either config or its fields, not both")
        self.config = config = config if config is not None else MultiScaleConfig(*args, **options)
        self.input_dim = input_dim
        self.latent_dim = latent_dim = config.latent_dim
        self.seq_len = seq_len
        channels, dropout = config.base_channels, config.dropout
        self.encoder = MultiScaleEncoder(input_dim, seq_len, latent_dim, channels, dropout, config.pooling)
        self.decoder = MultiScaleDecoder(input_dim, seq_len, latent_dim, channels, dropout, config.latent_groups)
        self.n_bands = n_octave_bands(seq_len)
        self.spectral_head = _summary_head(latent_dim, channels, input_dim * self.n_bands) if config.spectral_head else None
        self.quantile_head = _summary_head(latent_dim, channels, input_dim * len(QUANTILE_LEVELS)) if config.quantile_head else None
        self.posterior_bn = PosteriorBatchNorm(latent_dim, config.posterior_bn) if config.posterior_bn else None
        self.n_blocks = n_observation_blocks(seq_len)
        self.observation_head = _summary_head(latent_dim, channels, input_dim * self.n_blocks) if config.observation_head else None
        self.has_heads = config.spectral_head or config.quantile_head or config.observation_head

    def heads(self, mu: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        batch = mu.shape[0]
        band_power = None if self.spectral_head is None else self.spectral_head(mu).view(batch, self.input_dim, self.n_bands)
        quantiles = None if self.quantile_head is None else self.quantile_head(mu).view(batch, self.input_dim, len(QUANTILE_LEVELS))
        observation = None
        if self.observation_head is not None:  # a share of hours: sigmoid keeps it in (0, 1)
            observation = torch.sigmoid(self.observation_head(mu)).view(batch, self.input_dim, self.n_blocks)
        return band_power, quantiles, observation

    def encode_distribution(self, x, mask):
        mu, logvar = self.encoder(x, mask)
        if self.posterior_bn is not None:
            mu = self.posterior_bn(mu)
        return mu, logvar

    def decode(self, z, return_branches: bool = False):
        return self.decoder(z, return_branches=return_branches)
