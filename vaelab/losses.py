"""VAE objective terms, written once: masked reconstruction, true KL, free-bits KL, per-branch terms.

Scaling follows the user's plan so that its beta values keep their meaning: reconstruction is the
mean squared error per observed entry, and the KL term of the objective is averaged over latent
dimensions. The *true* KL (summed over dimensions, nats per patient) is always reported beside the
clamped term, so a collapsed posterior (true KL 0) can be told apart from a healthy one sitting
under the free-bits threshold (NOTES.md §1, defect 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .errors import VaelabError
from .schedules import BetaSchedule

FREE_BITS_MODES = ("batch", "sample")
# Levels of the quantile head's targets: each vital's distribution over a patient's observed hours.
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over observed entries (mask == 1); unobserved targets never contribute."""
    if mask is None:
        return torch.mean((pred - target) ** 2)
    return _observed_mse(pred, *_observed_target(target, mask))


def _observed_target(target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target with 0 where unobserved, 0/1 observed weights, count): computed once per batch,
    without gradient, so NaN in unobserved entries never leaks into a loss."""
    observed = (mask > 0).to(target.dtype)
    return target.masked_fill(observed == 0, 0.0), observed, observed.sum().clamp_min(1.0)


def _observed_mse(pred: torch.Tensor, clean_target: torch.Tensor, observed: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    # One multiply masks the error: cheaper in backward than a where over the prediction.
    diff = (pred - clean_target) * observed
    return (diff * diff).sum() / count


def octave_bands(seq_len: int) -> torch.Tensor:
    """(rfft bins, bands) 0/1 matrix grouping the bins k >= 1 by octave of their period T/k
    (2-4 h, 4-8 h, ..., the longest periods together); the mean (k = 0) is left to the MSE."""
    k = torch.arange(1, seq_len // 2 + 1, dtype=torch.float64)
    octave = torch.floor(torch.log2(seq_len / k)).long()  # period 2-4 h -> 1, 4-8 h -> 2, ...
    octave = octave - octave.min()
    bands = torch.zeros(seq_len // 2 + 1, int(octave.max()) + 1)
    bands[1 + torch.arange(len(k)), octave] = 1.0
    return bands


def log_band_power(signal: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """(batch, time, vitals) -> (batch, vitals, octave bands): log of each band's mean power per
    hour, of the signal seen through its mask (0 where unobserved)."""
    seq_len = signal.shape[1]
    bands = octave_bands(seq_len).to(dtype=signal.dtype, device=signal.device)
    power = torch.fft.rfft(signal * observed, dim=1).abs().pow(2)
    return torch.log(torch.einsum("bkv,kn->bvn", power, bands) / seq_len + 1e-3)


def spectral_log_distance(pred: torch.Tensor, clean_target: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of log band power between prediction and target, per patient, vital
    and octave band, both seen through the same mask (so missingness cancels out).

    MSE lets a decoder ignore a low-amplitude rhythm or events whose timing it cannot know; this
    term charges for a spectrum that lacks them, so the latent has to carry how much a patient
    oscillates or fluctuates at every time scale. Inputs (batch, time, vitals).
    """
    return (log_band_power(pred, observed) - log_band_power(clean_target, observed)).pow(2).mean()


def observed_quantiles(signal: torch.Tensor, observed: torch.Tensor, levels=QUANTILE_LEVELS) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, time, vitals) -> ((batch, vitals, levels) quantiles over the observed hours, (batch,
    vitals) 1/0 whether the vital was observed at all; its quantiles are then 0).

    Linear interpolation between order statistics, as ``numpy.quantile``. How often and how far a
    patient leaves their usual range (the upper and lower tails) is what short episodes change;
    the spectral power of the same hours mixes them with noise.
    """
    seen = observed > 0
    ordered = signal.masked_fill(~seen, float("inf")).sort(dim=1).values.transpose(1, 2)  # (B, V, T), observed first
    count = seen.sum(dim=1)
    q = torch.tensor(levels, dtype=signal.dtype, device=signal.device)
    position = (count.clamp(min=1) - 1).to(signal.dtype).unsqueeze(-1) * q
    lower, upper = position.floor().long(), position.ceil().long()
    ordered = ordered.masked_fill(torch.isinf(ordered), 0.0)
    low, high = ordered.gather(2, lower), ordered.gather(2, upper)
    present = (count > 0).to(signal.dtype)
    return (low + (high - low) * (position - lower)) * present.unsqueeze(-1), present


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) element-wise: (batch, latent_dim), nats."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def free_bits_kl(kl: torch.Tensor, free_bits: float, mode: str = "batch") -> torch.Tensor:
    """The KL term as optimized: only KL above ``free_bits`` nats per dimension is penalised.

    ``batch`` (default, Kingma et al. 2016): each dimension's KL is first averaged over the
    minibatch, then clamped, so a dimension used by some patients pays nothing until its average
    exceeds the threshold. ``sample``: the plan's form, clamped per patient and dimension.
    Returns the mean over dimensions (the plan's scaling).
    """
    if mode == "batch":
        return torch.clamp(kl.mean(dim=0) - free_bits, min=0).mean()
    if mode == "sample":
        return torch.clamp(kl - free_bits, min=0).mean()
    raise VaelabError(f"free_bits_mode {mode!r} is unknown; choose one of {', '.join(FREE_BITS_MODES)}")


@dataclass
class LossTerms:
    """Every term of one evaluation of the objective (scalars are 0-d tensors)."""

    total: torch.Tensor
    recon: torch.Tensor  # the reconstruction term as optimized (merged output and branches)
    kl_clamped: torch.Tensor  # the free-bits KL term as optimized
    kl: torch.Tensor  # true KL per patient, summed over dimensions (nats)
    kl_per_dim: torch.Tensor  # (latent_dim,) true KL averaged over the batch
    recon_merged: torch.Tensor  # masked MSE of the merged output alone
    branch_recon: list[torch.Tensor] = field(default_factory=list)
    beta: float = 0.0
    spectral: torch.Tensor | None = None  # the log band-power distance (0 when spectral_weight is 0)
    band_power: torch.Tensor | None = None  # MSE of the spectral head's log band power (0 without a head)
    quantile: torch.Tensor | None = None  # MSE of the quantile head's per-vital quantiles (0 without a head)


class VAELoss(nn.Module):
    """Masked reconstruction + beta * free-bits KL; the loss of both models.

    ``beta`` is read from ``schedule`` for an epoch (``get_beta``) and passed to ``forward``
    explicitly. Without an explicit beta, ``forward`` uses the schedule's target beta.
    """

    def __init__(
        self,
        beta: float = 0.5,
        free_bits: float = 2.0,
        free_bits_mode: str = "batch",
        branch_weight: float = 1.0,
        schedule: BetaSchedule | None = None,
        spectral_weight: float = 0.0,
        band_power_weight: float = 0.3,
        quantile_weight: float = 0.3,
    ):
        super().__init__()
        if not quantile_weight >= 0:
            raise VaelabError(f"quantile_weight must be >= 0, got {quantile_weight}")
        self.quantile_weight = float(quantile_weight)
        if not spectral_weight >= 0:
            raise VaelabError(f"spectral_weight must be >= 0, got {spectral_weight}")
        if not band_power_weight >= 0:
            raise VaelabError(f"band_power_weight must be >= 0, got {band_power_weight}")
        self.spectral_weight = float(spectral_weight)
        self.band_power_weight = float(band_power_weight)
        if not free_bits >= 0:
            raise VaelabError(f"free_bits must be >= 0, got {free_bits}")
        if free_bits_mode not in FREE_BITS_MODES:
            raise VaelabError(f"free_bits_mode {free_bits_mode!r} is unknown; choose one of {', '.join(FREE_BITS_MODES)}")
        if not branch_weight >= 0:
            raise VaelabError(f"branch_weight must be >= 0, got {branch_weight}")
        self.schedule = schedule if schedule is not None else BetaSchedule(beta=beta, kind="constant")
        self.free_bits = float(free_bits)
        self.free_bits_mode = free_bits_mode
        self.branch_weight = float(branch_weight)

    @property
    def target_beta(self) -> float:
        return float(self.schedule.beta)

    def get_beta(self, epoch: int) -> float:
        """Beta for ``epoch`` from the schedule (pure: no state changes)."""
        return self.schedule(epoch)

    def terms(
        self,
        recon: torch.Tensor,
        target: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        mask: torch.Tensor | None = None,
        branch_recons: list[torch.Tensor] | None = None,
        beta: float | None = None,
        band_power: torch.Tensor | None = None,
        quantiles: torch.Tensor | None = None,
    ) -> LossTerms:
        """All terms of the objective; ``forward`` returns the plan's three of them.

        With branch outputs, each branch's masked MSE weighs ``branch_weight`` times the merged
        output's: recon = (merged + w * sum(branches)) / (1 + w * n_branches). w = 1 is the plan.
        ``band_power``: a model's prediction of the data's log band power (its spectral head), charged
        ``band_power_weight`` times its mean squared error. ``quantiles``: a model's prediction of
        each vital's quantiles over the observed hours (its quantile head), charged ``quantile_weight``
        times its mean squared error over the vitals observed at all.
        """
        beta = self.target_beta if beta is None else float(beta)
        if mask is None:
            recon_merged = masked_mse(recon, target)
            branch_recon = [masked_mse(b, target) for b in (branch_recons or [])]
        else:
            clean = _observed_target(target, mask)
            recon_merged = _observed_mse(recon, *clean)
            branch_recon = [_observed_mse(b, *clean) for b in (branch_recons or [])]
        spectral = torch.zeros((), dtype=recon.dtype, device=recon.device)
        band_error = torch.zeros((), dtype=recon.dtype, device=recon.device)
        quantile_error = torch.zeros((), dtype=recon.dtype, device=recon.device)
        if self.spectral_weight > 0 or band_power is not None or quantiles is not None:
            clean_target, observed = (clean[0], clean[1]) if mask is not None else (target, torch.ones_like(target))
            if self.spectral_weight > 0:
                spectral = spectral_log_distance(recon, clean_target, observed)
            if band_power is not None:
                band_error = (band_power - log_band_power(clean_target, observed)).pow(2).mean()
            if quantiles is not None:
                wanted, present = observed_quantiles(clean_target, observed)
                quantile_error = ((quantiles - wanted).pow(2).mean(dim=-1) * present).sum() / present.sum().clamp(min=1)
        if branch_recon and self.branch_weight > 0:
            recon_term = (recon_merged + self.branch_weight * torch.stack(branch_recon).sum()) / (
                1 + self.branch_weight * len(branch_recon)
            )
        else:
            recon_term = recon_merged
        kl = gaussian_kl(mu, logvar)
        kl_clamped = free_bits_kl(kl, self.free_bits, self.free_bits_mode)
        kl_per_dim = kl.mean(dim=0)
        return LossTerms(
            total=(recon_term + self.spectral_weight * spectral + self.band_power_weight * band_error
                   + self.quantile_weight * quantile_error + beta * kl_clamped),
            recon=recon_term,
            kl_clamped=kl_clamped,
            kl=kl_per_dim.sum(),
            kl_per_dim=kl_per_dim,
            recon_merged=recon_merged,
            branch_recon=branch_recon,
            beta=beta,
            spectral=spectral,
            band_power=band_error,
            quantile=quantile_error,
        )

    def forward(
        self,
        recon: torch.Tensor,
        target: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        mask: torch.Tensor | None = None,
        branch_recons: list[torch.Tensor] | None = None,
        beta: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, recon_loss, kl_loss) as in the plan; kl_loss is the clamped (optimized) term."""
        t = self.terms(recon, target, mu, logvar, mask, branch_recons, beta)
        return t.total, t.recon, t.kl_clamped


class MultiScaleVAELoss(VAELoss):
    """The plan's loss: per-branch reconstruction, free bits and cyclical beta annealing."""

    def __init__(
        self,
        beta: float = 0.5,
        free_bits: float = 2.0,
        warmup_epochs: int = 30,
        cycle_epochs: int = 40,
        free_bits_mode: str = "batch",
        branch_weight: float = 1.0,
        schedule_kind: str = "cyclical",
        spectral_weight: float = 0.0,
        band_power_weight: float = 0.3,
        quantile_weight: float = 0.3,
    ):
        schedule = BetaSchedule(beta=beta, kind=schedule_kind, warmup_epochs=warmup_epochs, cycle_epochs=cycle_epochs)
        super().__init__(
            beta=beta,
            free_bits=free_bits,
            free_bits_mode=free_bits_mode,
            branch_weight=branch_weight,
            schedule=schedule,
            spectral_weight=spectral_weight,
            band_power_weight=band_power_weight,
            quantile_weight=quantile_weight,
        )
        self.warmup_epochs = warmup_epochs
        self.cycle_epochs = cycle_epochs
