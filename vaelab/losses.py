"""The VAE objective, written once: masked reconstruction, true KL, free-bits KL, branch and head terms.

Scaling follows the user's plan so that its beta values keep their meaning: reconstruction is the
mean squared error per observed entry, and the KL term of the objective is averaged over latent
dimensions. The *true* KL (summed over dimensions, nats per patient) is always reported beside the
clamped term, so a collapsed posterior (true KL 0) can be told apart from a healthy one sitting
under the free-bits threshold (docs/design-notes.md §1, defect 3).

One call: ``loss_fn.objective(output, x, mask, beta) -> LossTerms`` for a model's ``VAEOutput``;
``loss_fn(recon, target, mu, logvar)`` is the plan's tuple-returning form of the same objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import VaelabError, check, check_finite
from .models.base import VAEOutput
from .schedules import BetaSchedule, ScheduleConfig
from .signal import HeadTargets, head_targets, log_band_power

FREE_BITS_MODES = ("batch", "sample")


@dataclass
class LossConfig:
    """The objective's weights (Hydra: ``loss``); the defaults are vaelab's recommended loss."""

    beta: float = 0.5
    free_bits: float = 2.0
    free_bits_mode: str = "batch"  # batch (Kingma et al. 2016) | sample (the plan's)
    branch_weight: float = 0.4  # each decoder branch's MSE relative to the merged output's; 0 = off (the plan: 1)
    spectral_weight: float = 0.0  # weight of the log band-power distance (spectral_log_distance); 0 = off
    band_power_weight: float = 0.3  # weight of the spectral head's error (models with a spectral head only)
    quantile_weight: float = 1.5  # weight of the quantile head's error (models with a quantile head only)
    observation_weight: float = 2.0  # the observation head's cross-entropy (that head only; experiments/physionet2019)

    def __post_init__(self) -> None:
        check(self.beta >= 0, "loss.beta", f"must be >= 0, got {self.beta}")
        check(self.free_bits >= 0, "loss.free_bits", f"must be >= 0, got {self.free_bits}")
        check(
            self.free_bits_mode in FREE_BITS_MODES,
            "loss.free_bits_mode",
            f"must be one of {', '.join(FREE_BITS_MODES)}, got {self.free_bits_mode!r}",
        )
        for name in ("branch_weight", "spectral_weight", "band_power_weight", "quantile_weight", "observation_weight"):
            check(getattr(self, name) >= 0, f"loss.{name}", f"must be >= 0, got {getattr(self, name)}")
        check_finite(self, "loss")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over observed entries (mask == 1); unobserved targets never contribute."""
    if mask is None:
        return torch.mean((pred - target) ** 2)
    return _observed_mse(pred, *_observed_target(target, mask))


def _observed_target(target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target with 0 where unobserved, 0/1 observed weights, count): computed once per batch,
    so NaN in unobserved entries never leaks into a loss."""
    observed = (mask > 0).to(target.dtype)
    return target.masked_fill(observed == 0, 0.0), observed, observed.sum().clamp_min(1.0)


def _observed_mse(pred: torch.Tensor, clean_target: torch.Tensor, observed: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    # One multiply masks the error: cheaper in backward than a where over the prediction.
    diff = (pred - clean_target) * observed
    return (diff * diff).sum() / count


def spectral_log_distance(pred: torch.Tensor, clean_target: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of log band power between prediction and target, per patient, vital
    and octave band, both seen through the same mask (so missingness cancels out).

    MSE lets a decoder ignore a low-amplitude rhythm or events whose timing it cannot know; this
    term charges for a spectrum that lacks them. Inputs (batch, time, vitals).
    """
    return (log_band_power(pred, observed) - log_band_power(clean_target, observed)).pow(2).mean()


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
    observation: torch.Tensor | None = None  # cross-entropy of the observation head's observed fractions (0 without a head)


class VAELoss(nn.Module):
    """Masked reconstruction + beta * free-bits KL, plus the branch and head terms; every model's loss.

    ``VAELoss(beta, free_bits, free_bits_mode, branch_weight, ...)``: the arguments are
    ``LossConfig``'s fields, or one ``config=LossConfig(...)``. Beta for an epoch comes from
    ``schedule`` (``get_beta``, default: the target beta from the first epoch) and is passed to the
    objective explicitly; without one the objective uses the target beta.
    """

    def __init__(self, *args, schedule: BetaSchedule | None = None, config: LossConfig | None = None, **options):
        super().__init__()
        if config is not None and (args or options):
            raise TypeError("pass either config or its fields, not both")
        self.config = config = config if config is not None else LossConfig(*args, **options)
        self.schedule = schedule if schedule is not None else BetaSchedule(config.beta, kind="constant")
        self.free_bits = float(config.free_bits)
        self.free_bits_mode = config.free_bits_mode
        self.branch_weight = float(config.branch_weight)
        self.spectral_weight = float(config.spectral_weight)
        self.band_power_weight = float(config.band_power_weight)
        self.quantile_weight = float(config.quantile_weight)
        self.observation_weight = float(config.observation_weight)

    @property
    def target_beta(self) -> float:
        return float(self.schedule.beta)

    def get_beta(self, epoch: int) -> float:
        """Beta for ``epoch`` from the schedule (pure: no state changes)."""
        return self.schedule(epoch)

    def objective(
        self,
        output: VAEOutput,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        beta: float | None = None,
        targets: HeadTargets | None = None,
    ) -> LossTerms:
        """All terms of the objective for a model's ``VAEOutput`` on inputs ``x`` (and ``mask``).

        With branch outputs, each branch's masked MSE weighs ``branch_weight`` times the merged
        output's: recon = (merged + w * sum(branches)) / (1 + w * n_branches); w = 1 is the plan.
        A head's prediction is charged its weight times its mean squared error against ``targets``
        (``signal.head_targets`` of the batch; computed here when not given).
        """
        beta = self.target_beta if beta is None else float(beta)
        recon = output.recon
        if mask is None:
            recon_merged = masked_mse(recon, x)
            branch_recon = [masked_mse(b, x) for b in output.branches]
        else:
            clean = _observed_target(x, mask)
            recon_merged = _observed_mse(recon, *clean)
            branch_recon = [_observed_mse(b, *clean) for b in output.branches]
        zero = torch.zeros((), dtype=recon.dtype, device=recon.device)
        spectral, band_error, quantile_error, observation_error = zero, zero, zero, zero
        if self.spectral_weight > 0:
            observed = torch.ones_like(x) if mask is None else clean[1]
            spectral = spectral_log_distance(recon, x if mask is None else clean[0], observed)
        if output.band_power is not None or output.quantiles is not None or output.observation is not None:
            targets = targets if targets is not None else head_targets(x, mask)
            if output.band_power is not None:
                band_error = (output.band_power - targets.band_power).pow(2).mean()
            if output.quantiles is not None:
                present = targets.present
                quantile_error = ((output.quantiles - targets.quantiles).pow(2).mean(dim=-1) * present).sum() / present.sum().clamp(min=1)
            if output.observation is not None:  # soft targets: the minimum is their entropy, not 0
                observation_error = F.binary_cross_entropy(output.observation, targets.observation)
        if branch_recon and self.branch_weight > 0:
            recon_term = (recon_merged + self.branch_weight * torch.stack(branch_recon).sum()) / (
                1 + self.branch_weight * len(branch_recon)
            )
        else:
            recon_term = recon_merged
        kl = gaussian_kl(output.mu, output.logvar)
        kl_clamped = free_bits_kl(kl, self.free_bits, self.free_bits_mode)
        kl_per_dim = kl.mean(dim=0)
        total = (
            recon_term
            + self.spectral_weight * spectral
            + self.band_power_weight * band_error
            + self.quantile_weight * quantile_error
            + self.observation_weight * observation_error
            + beta * kl_clamped
        )
        return LossTerms(
            total=total,
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
            observation=observation_error,
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
        """The plan's call: (total, recon_loss, kl_loss), kl_loss the clamped (optimized) term."""
        t = self.objective(VAEOutput(recon, mu, logvar, mu, list(branch_recons or [])), target, mask, beta)
        return t.total, t.recon, t.kl_clamped


class MultiScaleVAELoss(VAELoss):
    """The plan's loss: per-branch reconstruction, free bits and cyclical beta annealing.

    ``MultiScaleVAELoss(beta, free_bits, warmup_epochs, cycle_epochs, **options)``: the plan's four
    positionally; ``schedule_kind`` and every other ``LossConfig`` field by keyword.
    """

    def __init__(
        self,
        beta: float = LossConfig.beta,
        free_bits: float = LossConfig.free_bits,
        warmup_epochs: int = ScheduleConfig.warmup_epochs,
        cycle_epochs: int = ScheduleConfig.cycle_epochs,
        *,
        schedule_kind: str = ScheduleConfig.kind,
        **options,
    ):
        schedule = BetaSchedule(beta, schedule_kind, warmup_epochs, cycle_epochs)
        super().__init__(config=LossConfig(beta=beta, free_bits=free_bits, **options), schedule=schedule)
        self.warmup_epochs = warmup_epochs
        self.cycle_epochs = cycle_epochs


def build_loss(config: LossConfig, schedule: ScheduleConfig) -> VAELoss:
    """The run's loss: its weights and its beta schedule (what the CLI and VAEBuilder both train with)."""
    return VAELoss(config=config, schedule=BetaSchedule.from_config(config.beta, schedule))
