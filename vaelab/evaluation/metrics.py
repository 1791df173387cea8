"""Posterior-collapse and reconstruction metrics on plain numpy arrays.

Everything here takes the encoder's outputs for a set of patients -- ``mu`` and ``logvar`` of the
diagonal Gaussian q(z|x), shape (N, D) -- or decoder outputs of shape (N, T, V), and returns plain
Python numbers, lists or numpy arrays that callers turn into lists (see ``latent_summary``). Only
``free_bits_held`` runs torch: it asks the training loss's own free-bits term (``vaelab.losses``).

A collapsed posterior has q(z|x) = p(z) = N(0, I) for every patient: KL 0, no spread of the means
across patients, no active units and no mutual information between x and z. The metrics below
measure each of these separately because they fail differently: KL can be kept above zero by
free-bits-style tricks while the means carry no information about the patient, and MI is the only
one that asks directly whether z tells patients apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp

from ..collapse import ACTIVE_UNIT_THRESHOLD
from ..collapse import active_units as _count_active
from ..losses import free_bits_kl, gaussian_kl
from ..signal import BANDS, band_energy

LOG_2PI = float(np.log(2.0 * np.pi))
MI_BATCH_SIZE = 256  # the MI estimate is bounded by log(batch): one fixed batch, reported beside it


def _check_posterior(mu: np.ndarray, logvar: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] == 0:
        raise ValueError(f"mu must have shape (patients, latent_dim) with at least one patient, got {mu.shape}")
    if logvar is None:
        return mu, None
    logvar = np.asarray(logvar, dtype=np.float64)
    if logvar.shape != mu.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {mu.shape} and {logvar.shape}")
    return mu, logvar


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z|x) || N(0, I)) per latent dimension, averaged over patients, in nats; shape (D,).

    Closed form for a diagonal Gaussian against the standard normal (Kingma & Welling 2014,
    appendix B): ``-0.5 * (1 + logvar - mu**2 - exp(logvar))``. No free-bits clamp: this is the
    true KL, so a dimension held at the free-bits floor by the loss still reads ~0 here.
    """
    mu, logvar = _check_posterior(mu, logvar)
    return np.mean(-0.5 * (1.0 + logvar - mu**2 - np.exp(logvar)), axis=0)


def total_kl(mu: np.ndarray, logvar: np.ndarray) -> float:
    """KL(q(z|x) || N(0, I)) summed over dimensions, in nats per patient; 0 means full collapse."""
    return float(np.sum(kl_per_dim(mu, logvar)))


def free_bits_held(mu: np.ndarray, logvar: np.ndarray, free_bits: float, mode: str = "batch") -> np.ndarray:
    """Per latent dimension, True where the free-bits floor holds it: the training loss's free-bits
    term (``losses.free_bits_kl``, ``loss.free_bits`` and ``loss.free_bits_mode``) passes no gradient
    to the dimension's KL for these patients, so beta has no effect on it. Shape (D,).

    ``batch`` mode: the dimension's KL averaged over the patients is below ``free_bits``; ``sample``
    mode: every patient's KL on it is. With ``free_bits`` 0 no dimension is held.
    """
    mu, logvar = _check_posterior(mu, logvar)
    with torch.enable_grad():
        kl = gaussian_kl(torch.tensor(mu), torch.tensor(logvar)).requires_grad_()
        free_bits_kl(kl, free_bits, mode).backward()
    return (kl.grad == 0).all(dim=0).numpy()


def free_bits_summary(mu: np.ndarray, logvar: np.ndarray, free_bits: float, mode: str = "batch") -> dict:
    """``free_bits_held_fraction`` (share of dimensions ``free_bits_held``) and ``beta_inactive``
    (every dimension held: the objective's KL term is 0, so beta has no effect on the model)."""
    held = free_bits_held(mu, logvar, free_bits, mode)
    return {"free_bits_held_fraction": float(held.mean()), "beta_inactive": bool(held.all())}


def latent_spread_per_dim(mu: np.ndarray) -> np.ndarray:
    """Standard deviation across patients (ddof=0) of each posterior mean; shape (D,).

    A dimension whose mean does not move between patients carries no patient information,
    whatever its KL.
    """
    mu, _ = _check_posterior(mu)
    return np.std(mu, axis=0)


def latent_spread(mu: np.ndarray) -> float:
    """Mean over dimensions of ``latent_spread_per_dim``; ~0 for a collapsed encoder."""
    return float(np.mean(latent_spread_per_dim(mu)))


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of active latent dimensions (Burda, Grosse & Salakhutdinov 2016, section 5.2): those
    whose posterior mean varies across patients (ddof=0) by more than ``threshold``."""
    mu, _ = _check_posterior(mu)
    return _count_active(mu, threshold)


def mutual_information(mu: np.ndarray, logvar: np.ndarray, batch_size: int = MI_BATCH_SIZE, seed: int = 0) -> float:
    """Minibatch estimate of the mutual information I(x; z) under q, in nats (He et al. 2019,
    "Lagging Inference Networks and Posterior Collapse in Variational Autoencoders", eq. 4 and
    their ``calc_mi``).

    I(x; z) = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)], with the aggregate posterior q(z) of a
    batch approximated by ``logsumexp_j log q(z | x_j) - log(batch)``. One z is drawn per patient
    (seeded), and both terms are evaluated at that same sample. He et al. use the closed-form
    entropy for the first term; the expectation is the same, but the shared sample makes the
    estimate exactly 0 for identical posteriors and never larger than log(batch).

    Patients are shuffled (seeded) and cut into batches of exactly ``batch_size``; the last
    partial batch is DROPPED so that every batch has the same bound. With fewer than
    ``batch_size`` patients, all of them form one batch. Because the estimate is bounded by
    log(batch) (log 256 = 5.55 nats), the batch size must be reported with the number -- values
    from different batch sizes are not comparable (``latent_summary`` stores it as
    ``mi_batch_size``).
    """
    mu, logvar = _check_posterior(mu, logvar)
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2, got {batch_size}")
    n_patients, latent_dim = mu.shape
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_patients)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)

    batch = min(batch_size, n_patients)
    estimates = []
    for start in range(0, n_patients - batch + 1, batch):
        idx = order[start : start + batch]
        z_b, mu_b, logvar_b = z[idx], mu[idx], logvar[idx]
        # log q(z_i | x_j) for every sample i and posterior j of the batch: (batch, batch)
        dev = z_b[:, None, :] - mu_b[None, :, :]
        log_density = -0.5 * np.sum(dev**2 / np.exp(logvar_b)[None, :, :] + logvar_b[None, :, :] + LOG_2PI, axis=-1)
        log_q_z_given_x = np.diag(log_density)
        log_q_z = logsumexp(log_density, axis=1) - np.log(batch)
        estimates.append(np.mean(log_q_z_given_x - log_q_z))
    return float(np.mean(estimates))


def _observed_entries(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recon, target with 0 where unobserved, the boolean mask) as float64, after checking shapes;
    NaN in unobserved targets never leaks."""
    recon = np.asarray(recon, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    observed = np.asarray(mask) > 0
    if not recon.shape == target.shape == observed.shape or recon.ndim != 3:
        raise ValueError(
            f"recon, target and mask must all have shape (patients, hours, vitals), got {recon.shape}, {target.shape} and {observed.shape}"
        )
    return recon, np.where(observed, target, 0.0), observed


def _observed(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared error with unobserved entries set to 0 (NaN in target never leaks), and the mask."""
    recon, target, observed = _observed_entries(recon, target, mask)
    return np.where(observed, (recon - target) ** 2, 0.0), observed


def masked_mse(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over observed entries only (mask == 1); arrays (N, T, V).

    Unobserved hours are not data: averaging over them would reward imputing the fill value.
    Raises ValueError when nothing is observed.
    """
    squared_error, observed = _observed(recon, target, mask)
    n_observed = int(observed.sum())
    if n_observed == 0:
        raise ValueError("masked_mse: the mask has no observed entry")
    return float(squared_error.sum() / n_observed)


def masked_mse_per_vital(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked MSE per vital sign, shape (V,); NaN for a vital with no observed entry.

    One well-reconstructed, densely measured vital (heart rate) can hide a collapsed decoder on
    the sparse ones.
    """
    squared_error, observed = _observed(recon, target, mask)
    counts = observed.sum(axis=(0, 1))
    sums = squared_error.sum(axis=(0, 1))
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def branch_mse(branch_recons: list[np.ndarray], target: np.ndarray, mask: np.ndarray) -> list[float]:
    """Masked MSE of each decoder branch's output, in branch order.

    In a multi-scale decoder a branch with an MSE no better than the mean predictor is not used.
    """
    return [masked_mse(recon, target, mask) for recon in branch_recons]


@dataclass
class BandSums:
    """What ``band_mse`` and ``band_r2`` divide: per band, the residual's and the target's energy, and
    the observed entries. Sums over patients add up, so batches can be accumulated (streamed runs)."""

    error: dict[str, float]
    signal: dict[str, float]
    n_observed: int

    @classmethod
    def zero(cls) -> BandSums:
        return cls(dict.fromkeys(BANDS, 0.0), dict.fromkeys(BANDS, 0.0), 0)

    def __add__(self, other: BandSums) -> BandSums:
        return BandSums(
            {b: self.error[b] + other.error[b] for b in BANDS},
            {b: self.signal[b] + other.signal[b] for b in BANDS},
            self.n_observed + other.n_observed,
        )

    def mse(self) -> dict[str, float]:
        if self.n_observed == 0:
            raise ValueError("band_mse: the mask has no observed entry")
        return {name: self.error[name] / self.n_observed for name in BANDS}

    def r2(self) -> dict[str, float]:
        return {name: (1.0 - self.error[name] / self.signal[name]) if self.signal[name] > 0 else float("nan") for name in BANDS}


def band_sums(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> BandSums:
    """The residual's and the target's energy per band over the observed entries (0 elsewhere)."""
    recon, target, observed = _observed_entries(recon, target, mask)
    residual = np.where(observed, recon - target, 0.0)
    return BandSums(band_energy(residual), band_energy(target), int(observed.sum()))


def band_mse(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The masked MSE split by time scale: {band: share of the MSE}, the bands summing to ``masked_mse``.

    The error is zero where unobserved (as in the MSE itself) and decomposed by its spectrum per
    patient and vital: a model that ignores the daily rhythm shows it in ``6to30h``, one that misses
    short episodes in ``lt6h``.
    """
    return band_sums(recon, target, mask).mse()


def band_r2(recon: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Per band, the fraction of the target's energy the reconstruction explains: 1 - error / signal.

    Targets are normalized (mean 0 per vital), so the signal energy in ``gt30h`` includes each
    patient's level. NaN for a band with no signal.
    """
    return band_sums(recon, target, mask).r2()


def latent_summary(
    mu: np.ndarray, logvar: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD, mi_batch_size: int = MI_BATCH_SIZE
) -> dict:
    """All collapse metrics in one JSON-serialisable dict (used by the trainer and the run outputs).

    Keys: ``kl``, ``kl_per_latent_dim`` (kl / latent_dim), ``kl_per_dim``, ``active_units``, ``latent_dim``, ``latent_spread``,
    ``latent_spread_per_dim``, ``mi``, ``mi_batch_size``. ``mi_batch_size`` is the batch the MI
    was actually computed on -- ``min(mi_batch_size, patients)`` -- since it bounds the MI.
    """
    mu, logvar = _check_posterior(mu, logvar)
    kl_dims = kl_per_dim(mu, logvar)
    spread_dims = latent_spread_per_dim(mu)
    return {
        "kl": float(np.sum(kl_dims)),
        "kl_per_latent_dim": float(np.mean(kl_dims)),
        "kl_per_dim": [float(v) for v in kl_dims],
        "active_units": active_units(mu, threshold),
        "latent_dim": int(mu.shape[1]),
        "latent_spread": float(np.mean(spread_dims)),
        "latent_spread_per_dim": [float(v) for v in spread_dims],
        "mi": mutual_information(mu, logvar, batch_size=mi_batch_size),
        "mi_batch_size": int(min(mi_batch_size, mu.shape[0])),
    }
