"""Per-patient summaries of a signal by time scale and by value: band powers, quantiles, bands.

Models (the heads' output sizes), losses (the heads' targets) and metrics (the reconstruction by
time scale) all read these, so each definition exists here once. Signals are (batch, time, vitals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Levels of the quantile head's targets: each vital's distribution over a patient's observed hours.
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
# Time-scale bands of the reconstruction metrics, by period in hours: within-shift events, the daily
# rhythm (6-30 h around 24 h), and the slow course (level and multi-day trend, the mean included).
BANDS = {"lt6h": (0.0, 6.0), "6to30h": (6.0, 30.0), "gt30h": (30.0, np.inf)}
# Added to band power before the log, so an empty band has a finite log power.
LOG_POWER_FLOOR = 1e-3
# The observation head's time resolution: each vital's observed fraction per block of this many
# hours (a nursing shift: how often a vital is charted changes with the patient's state).
OBSERVATION_BLOCK_HOURS = 8


def octave_bands(seq_len: int) -> torch.Tensor:
    """(rfft bins, bands) 0/1 matrix grouping the bins k >= 1 by octave of their period T/k
    (2-4 h, 4-8 h, ..., the longest periods together); the mean (k = 0) is left to the MSE."""
    k = torch.arange(1, seq_len // 2 + 1, dtype=torch.float64)
    octave = torch.floor(torch.log2(seq_len / k)).long()  # period 2-4 h -> 1, 4-8 h -> 2, ...
    octave = octave - octave.min()
    bands = torch.zeros(seq_len // 2 + 1, int(octave.max()) + 1)
    bands[1 + torch.arange(len(k)), octave] = 1.0
    return bands


def n_octave_bands(seq_len: int) -> int:
    return int(octave_bands(seq_len).shape[1])


def log_band_power(signal: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """(batch, time, vitals) -> (batch, vitals, octave bands): log of each band's mean power per
    hour, of the signal seen through its mask (0 where unobserved)."""
    seq_len = signal.shape[1]
    bands = octave_bands(seq_len).to(dtype=signal.dtype, device=signal.device)
    power = torch.fft.rfft(signal * observed, dim=1).abs().pow(2)
    return torch.log(torch.einsum("bkv,kn->bvn", power, bands) / seq_len + LOG_POWER_FLOOR)


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


def n_observation_blocks(seq_len: int) -> int:
    return -(-seq_len // OBSERVATION_BLOCK_HOURS)


def observed_fractions(observed: torch.Tensor) -> torch.Tensor:
    """(batch, time, vitals) 0/1 -> (batch, vitals, blocks): the share of each block's hours in
    which the vital was observed (a shorter last block is the share of its own hours). A stay
    shorter than the window shows as blocks of 0 at its end: its length is part of the pattern."""
    return F.avg_pool1d(observed.transpose(1, 2), OBSERVATION_BLOCK_HOURS, OBSERVATION_BLOCK_HOURS, ceil_mode=True)


@dataclass
class HeadTargets:
    """What the spectral, quantile and observation heads are asked to predict for each patient of a batch.

    They depend on the patient's data alone, so an in-memory run computes them once per patient
    (``head_targets`` over the whole cohort) instead of once per batch of every epoch.
    """

    band_power: torch.Tensor  # (batch, vitals, octave bands) log band power of the observed signal
    quantiles: torch.Tensor  # (batch, vitals, levels) quantiles over the observed hours
    present: torch.Tensor  # (batch, vitals) 1 where the vital was observed at all
    observation: torch.Tensor  # (batch, vitals, blocks) observed fraction of each block's hours

    def to(self, device) -> HeadTargets:
        return HeadTargets(*(getattr(self, name).to(device) for name in HEAD_TARGET_FIELDS))

    def rows(self, index) -> HeadTargets:
        index = torch.from_numpy(np.array(index, dtype=np.int64))  # a copy: run indexes are read-only arrays
        return HeadTargets(*(getattr(self, name)[index] for name in HEAD_TARGET_FIELDS))


HEAD_TARGET_FIELDS = ("band_power", "quantiles", "present", "observation")


def head_targets(x: torch.Tensor, mask: torch.Tensor | None) -> HeadTargets:
    """The heads' targets of normalized inputs (batch, time, vitals) seen through their mask."""
    observed = torch.ones_like(x) if mask is None else (mask > 0).to(x.dtype)
    clean = x.masked_fill(observed == 0, 0.0)
    quantiles, present = observed_quantiles(clean, observed)
    return HeadTargets(log_band_power(clean, observed), quantiles, present, observed_fractions(observed))


def head_targets_of_arrays(x: np.ndarray, mask: np.ndarray, batch_size: int = 1024) -> HeadTargets:
    """``head_targets`` of a whole cohort held as numpy arrays, in batches (bounded temporaries)."""

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))  # a copy: cached inputs are read-only

    parts = [head_targets(tensor(x[i : i + batch_size]), tensor(mask[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return HeadTargets(*(torch.cat([getattr(p, name) for p in parts]) for name in HEAD_TARGET_FIELDS))


def band_of_periods(seq_len: int) -> dict[str, np.ndarray]:
    """For each of ``BANDS``, the rfft bins (length ``seq_len``) whose period T/k falls in it.

    The mean (k = 0, infinite period) belongs to the slowest band.
    """
    k = np.arange(seq_len // 2 + 1)
    with np.errstate(divide="ignore"):
        period = np.where(k == 0, np.inf, seq_len / np.maximum(k, 1))
    return {name: (period >= low) & (period < high) | ((k == 0) & np.isinf(high)) for name, (low, high) in BANDS.items()}


def band_energy(signal: np.ndarray) -> dict[str, float]:
    """Energy (sum of squares over time, summed over patients and vitals) of (N, T, V) per band.

    Parseval for the real FFT: interior bins count twice, so the bands add up to the total energy.
    """
    seq_len = signal.shape[1]
    power = np.abs(np.fft.rfft(signal, axis=1)) ** 2
    weight = np.full(power.shape[1], 2.0)
    weight[0] = 1.0
    if seq_len % 2 == 0:
        weight[-1] = 1.0
    per_bin = (power * weight[None, :, None]).sum(axis=(0, 2)) / seq_len
    return {name: float(per_bin[bins].sum()) for name, bins in band_of_periods(seq_len).items()}
