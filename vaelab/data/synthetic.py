"""The built-in data set: realistic hourly ICU vitals whose generating factors are known.

It lets everything run without files, and the stored factors let a model's latent space be checked
against the truth. The generator follows ICU physiology and charting habits; it is NOT tuned to
make any model look good (ranges were set from textbook physiology, with PhysioNet 2019 observed
medians only as a sanity check: HR 84, SpO2 98, Temp 37.06, SBP 118, MAP 77, DBP 58.5, Resp 18).

Each patient's vitals are a linear read-out of six latent channels plus noise:

    severity   level + trend (saturating over ~5 days) + a slow shared AR(1) drift
    daily      daily_amplitude * cos(2*pi*t/24 - phase), phase relative to hour 0 of the series
    episodes   desaturation / tachycardia / hypotension / fever bumps of 2-8 h, episode_rate per day

then per-vital AR(1) noise and white noise, physiological limits, monitor rounding, MAP derived
from SBP and DBP, and realistic missingness (monitor downtime, BP rate, DBP never charted for some
patients, temperature every ~4 h, transport gaps where everything is missing).
"""

from __future__ import annotations

import numpy as np

from ..errors import VaelabError
from .layer2 import DEFAULT_VITALS, Layer2Data

# The six simulated vitals; MAP is derived from SBP and DBP like a monitor does.
_SIMULATED = ("HR", "SBP", "DBP", "RR", "SPO2", "TEMP")
_MEAN = np.array([84.0, 120.0, 60.0, 18.0, 97.4, 37.0])  # population mean of personal baselines
_SPREAD = np.array([10.0, 13.0, 7.0, 2.5, 1.1, 0.25])  # between-patient sd of personal baselines
_LOADINGS = np.array(
    [  # effect of one unit of each latent channel on (HR, SBP, DBP, RR, SPO2, TEMP)
        [7.0, -6.0, -3.5, 2.2, -0.9, 0.20],  # severity: sicker -> faster HR/RR, lower BP/SpO2
        [5.0, 6.0, 3.5, 1.0, 0.0, 0.2],  # daily rhythm: afternoon peak, night trough
        [12.0, 0.0, 0.0, 6.0, -7.0, 0.0],  # desaturation episode
        [28.0, -4.0, 0.0, 3.0, 0.0, 0.0],  # tachycardia episode (e.g. new atrial fibrillation)
        [12.0, -28.0, -13.0, 0.0, 0.0, 0.0],  # hypotension episode (reflex tachycardia)
        [14.0, 0.0, 0.0, 3.0, -0.5, 1.4],  # fever episode (~10 bpm per degree)
    ]
)
_AR_SD = np.array([4.0, 6.0, 4.0, 1.8, 0.8, 0.12])  # slowly varying per-vital noise, AR(1) phi 0.7
_WHITE_SD = np.array([2.0, 4.0, 3.0, 1.2, 0.6, 0.08])  # measurement noise
_LOW = np.array([30.0, 60.0, 25.0, 6.0, 70.0, 34.0])
_HIGH = np.array([200.0, 230.0, 130.0, 50.0, 100.0, 42.0])
_DECIMALS = (0, 0, 0, 0, 0, 1)  # monitors chart integers; temperature to 0.1 degC
_N_EPISODE_TYPES = 4
_MAX_EPISODE_H = 8


def generate_synthetic(
    n_patients: int = 600,
    seq_len: int = 168,
    seed: int = 0,
    vitals: tuple[str, ...] = DEFAULT_VITALS,
) -> Layer2Data:
    """Simulate `n_patients` ICU stays of `seq_len` hours; deterministic for a seed."""
    if n_patients < 1 or seq_len < 1:
        raise VaelabError(f"synthetic data: need n_patients >= 1 and seq_len >= 1, got {n_patients} and {seq_len}")
    if not vitals or not set(vitals) <= set(DEFAULT_VITALS) or len(set(vitals)) != len(vitals):
        raise VaelabError(f"synthetic data: vitals must be distinct names from {DEFAULT_VITALS}, got {tuple(vitals)}")

    rng = np.random.default_rng(seed)
    n, hours = n_patients, np.arange(seq_len)

    # Per-patient factors.
    level = rng.standard_normal(n)
    trend = rng.normal(-0.1, 0.3, n)  # severity units per day; most patients slowly improve
    amplitude = rng.lognormal(0.0, 0.45, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)  # admission happens at any clock time
    episode_rate = rng.lognormal(np.log(0.6), 0.7, n) * np.exp(0.3 * level)  # sicker -> more events

    # Latent channels (N, T, 6).
    days = hours / 24.0
    drift = _ar1(rng, (n, seq_len, 1), phi=0.97, sd=0.3)[..., 0]
    severity = level[:, None] + (trend[:, None] * 5.0) * np.tanh(days / 5.0) + drift
    daily = amplitude[:, None] * np.cos(2 * np.pi * hours / 24.0 - phase[:, None])
    episodes = _episode_channels(rng, episode_rate, seq_len)
    latent = np.concatenate([severity[..., None], daily[..., None], episodes], axis=-1)

    # Vitals: personal baseline + latent read-out + noise, within limits, rounded like a monitor.
    z = rng.standard_normal((n, len(_SIMULATED)))
    z[:, 2] = 0.6 * z[:, 1] + 0.8 * z[:, 2]  # personal SBP and DBP baselines go together
    x = _MEAN + _SPREAD * z[:, None, :] + latent @ _LOADINGS
    x += _ar1(rng, x.shape, phi=0.7, sd=_AR_SD) + _WHITE_SD * rng.standard_normal(x.shape)
    x = np.clip(x, _LOW, _HIGH)
    x[..., 2] = np.minimum(x[..., 2], x[..., 1] - 10.0)  # DBP stays at least 10 below SBP
    x = np.stack([np.round(x[..., i], d) for i, d in enumerate(_DECIMALS)], axis=-1)
    sbp, dbp = x[..., 1], x[..., 2]
    mean_ap = np.round((sbp + 2.0 * dbp) / 3.0 + rng.normal(0.0, 1.5, sbp.shape))
    full = dict(zip(_SIMULATED, np.moveaxis(x, -1, 0)), MAP=mean_ap)

    observed = _observation_masks(rng, n, seq_len)
    values = np.stack([full[v] for v in vitals], axis=-1).astype(np.float32)
    masks = np.stack([observed[v] for v in vitals], axis=-1)
    never = ~masks.any(axis=(1, 2))
    masks[never, 0, 0] = True  # every patient has at least one observation
    values[~masks] = np.nan

    return Layer2Data(
        values=values,
        masks=masks.astype(np.float32),
        patient_ids=np.array([f"S{i:05d}" for i in range(n)], dtype=object),
        vitals=tuple(vitals),
        factors={
            "level": level,
            "daily_amplitude": amplitude,
            "daily_cos": amplitude * np.cos(phase),
            "daily_sin": amplitude * np.sin(phase),
            "trend": trend,
            "episode_rate": episode_rate,
        },
    )


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float, sd) -> np.ndarray:
    """Stationary AR(1) along axis 1 with marginal standard deviation `sd` (broadcast on the last axis)."""
    n, seq_len, k = shape
    out = rng.standard_normal((seq_len, n, k))  # time-major so each step touches contiguous memory
    out[1:] *= np.sqrt(1.0 - phi**2)
    for t in range(1, seq_len):
        out[t] += phi * out[t - 1]
    return np.moveaxis(out, 0, 1) * sd


def _intervals(rng: np.random.Generator, rate_per_day: np.ndarray, seq_len: int, min_h: int, max_h: int):
    """Poisson-many intervals per patient: (patient, start hour, length) arrays."""
    counts = rng.poisson(rate_per_day * seq_len / 24.0)
    patient = np.repeat(np.arange(len(counts)), counts)
    start = rng.integers(0, seq_len, patient.size)
    length = rng.integers(min_h, max_h + 1, patient.size)
    hour = start[:, None] + np.arange(max_h)
    inside = (np.arange(max_h) < length[:, None]) & (hour < seq_len)
    return patient, hour, length, inside


def _episode_channels(rng: np.random.Generator, rate_per_day: np.ndarray, seq_len: int) -> np.ndarray:
    """(N, T, 4) intensity of desaturation/tachycardia/hypotension/fever: smooth 2-8 h bumps."""
    patient, hour, length, inside = _intervals(rng, rate_per_day, seq_len, 2, _MAX_EPISODE_H)
    kind = rng.integers(0, _N_EPISODE_TYPES, patient.size)
    size = rng.uniform(0.6, 1.4, patient.size)
    bump = size[:, None] * np.sin(np.pi * (np.arange(_MAX_EPISODE_H) + 0.5) / length[:, None])
    out = np.zeros((len(rate_per_day), seq_len, _N_EPISODE_TYPES))
    rows = np.broadcast_to(patient[:, None], hour.shape)
    np.add.at(out, (rows[inside], hour[inside], np.broadcast_to(kind[:, None], hour.shape)[inside]), bump[inside])
    return out


def _observation_masks(rng: np.random.Generator, n: int, seq_len: int) -> dict[str, np.ndarray]:
    """Boolean (N, T) mask per vital, mimicking how ICU vitals get charted."""
    shape = (n, seq_len)
    # Bedside monitor (HR, SpO2, RR) is occasionally off or not validated for an hour.
    monitor = rng.random(shape) < rng.beta(19.0, 1.0, n)[:, None]
    # Blood pressure: arterial-line patients every hour, cuff patients less often.
    bp = rng.random(shape) < rng.beta(9.0, 1.0, n)[:, None]
    charts_dbp = rng.random(n) >= 0.25  # some units never chart DBP for a patient
    # Temperature roughly every 4 h from a patient-specific starting hour, with some extra checks.
    offset = rng.integers(0, 4, n)[:, None]
    temp = (((np.arange(seq_len) - offset) % 4 == 0) & (rng.random(shape) < 0.85)) | (rng.random(shape) < 0.04)
    masks = {
        "HR": monitor & (rng.random(shape) < 0.97),
        "SPO2": monitor & (rng.random(shape) < 0.95),
        "RR": monitor & (rng.random(shape) < 0.93),
        "SBP": bp & (rng.random(shape) < 0.98),
        "MAP": bp & (rng.random(shape) < 0.98),
        "DBP": bp & (rng.random(shape) < 0.97) & charts_dbp[:, None],
        "TEMP": temp,
    }
    # Transport, procedures, disconnections: multi-hour gaps with nothing charted.
    patient, hour, _, inside = _intervals(rng, np.full(n, 0.15), seq_len, 2, 6)
    gap = np.zeros(shape, dtype=bool)
    gap[np.broadcast_to(patient[:, None], hour.shape)[inside], hour[inside]] = True
    return {name: m & ~gap for name, m in masks.items()}
