"""PNG figures of one run: do the training curves, per-dimension KL, latent spread and
reconstructions show posterior collapse?

Each function takes plain numpy/pandas inputs and an output path, writes one PNG and returns the path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..collapse import ACTIVE_STD_THRESHOLD
from ..errors import VaelabError
from .common import (
    C_ACTIVE,
    C_BETA,
    C_INACTIVE,
    C_OBS,
    C_RECON,
    C_THRESHOLD,
    C_TRAIN,
    C_VAL,
    figure,
    no_data,
    save,
    target,
)

__all__ = ["plot_kl_per_dim", "plot_latent_spread", "plot_reconstructions", "plot_training_curves"]

# Units for vital names that vaelab data commonly uses; matched on a normalised name.
_VITAL_UNITS = {
    "hr": "bpm",
    "heartrate": "bpm",
    "pulse": "bpm",
    "sbp": "mmHg",
    "dbp": "mmHg",
    "map": "mmHg",
    "meanbp": "mmHg",
    "sysbp": "mmHg",
    "diasbp": "mmHg",
    "systolicbp": "mmHg",
    "diastolicbp": "mmHg",
    "meanarterialpressure": "mmHg",
    "rr": "breaths/min",
    "resprate": "breaths/min",
    "respiratoryrate": "breaths/min",
    "spo2": "%",
    "sao2": "%",
    "o2sat": "%",
    "temp": "°C",
    "temperature": "°C",
    "tempc": "°C",
    "gcs": "points",
    "glucose": "mg/dL",
    "fio2": "fraction",
}


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise VaelabError(f"{name} must be one value per latent dimension (1-D), got shape {arr.shape}")
    if arr.size == 0:
        raise VaelabError(f"{name} is empty: nothing to plot")
    return arr


def _dim_ticks(ax, order: np.ndarray) -> None:
    """Label bar positions by original latent index; thin labels so they stay legible."""
    n = len(order)
    step = max(1, int(np.ceil(n / 64)))
    pos = np.arange(0, n, step)
    ax.set_xticks(pos)
    ax.set_xticklabels([str(int(order[i])) for i in pos], rotation=90 if n > 16 else 0, fontsize=8 if n > 32 else 9)
    ax.set_xlim(-0.6, n - 0.4)


def _bar_width(n: int) -> float:
    return float(min(16.0, max(6.0, 0.22 * n + 2.5)))


def _vital_unit(name: str, units: Mapping[str, str] | None) -> str | None:
    if units and name in units:
        return units[name] or None
    return _VITAL_UNITS.get(re.sub(r"[^a-z0-9]", "", str(name).lower()))


# ----------------------------------------------------------------------------------------------
# training curves


def plot_training_curves(history: pd.DataFrame, path, *, recon_unit: str = "nats") -> Path:
    """Reconstruction, true KL and beta per epoch, stacked on one epoch axis.

    Collapse shows up as the true KL falling to ~0 while the (free-bits) clamped term stays at its
    floor and the active-unit count drops; aligning them with the beta schedule shows whether the
    annealing caused it. Columns that are missing from ``history`` are simply not drawn.
    ``recon_unit`` labels the reconstruction axis (nats for a Gaussian NLL).
    """
    path = target(path)
    if not isinstance(history, pd.DataFrame):
        history = pd.DataFrame(history)
    if len(history) == 0:
        raise VaelabError("training history is empty: no epochs to plot")
    if "epoch" in history.columns:
        history = history.sort_values("epoch")
        epoch = pd.to_numeric(history["epoch"], errors="coerce").to_numpy(dtype=float)
    else:
        epoch = np.arange(len(history), dtype=float)
    # Markers keep short runs (or a single epoch) visible; long runs read better as plain lines.
    marker = "o" if len(history) <= 40 else None

    def col(name: str) -> np.ndarray | None:
        if name not in history.columns:
            return None
        values = pd.to_numeric(history[name], errors="coerce").to_numpy(dtype=float)
        return values if np.isfinite(values).any() else None

    with figure((8.0, 9.0)) as fig:
        ax_rec, ax_kl, ax_beta = fig.subplots(3, 1, sharex=True)
        fig.suptitle("Training curves")

        drawn = False
        for name, label, color in (("train_recon", "train", C_TRAIN), ("val_recon", "validation", C_VAL)):
            values = col(name)
            if values is not None:
                ax_rec.plot(epoch, values, color=color, marker=marker, ms=3, label=label)
                drawn = True
        ax_rec.set_title("Reconstruction loss")
        ax_rec.set_ylabel(f"Reconstruction ({recon_unit})" if recon_unit else "Reconstruction")
        if drawn:
            ax_rec.legend(loc="best")
        else:
            no_data(ax_rec, "reconstruction not recorded")

        drawn = False
        for name, label, color, style in (
            ("train_kl", "train (true KL)", C_TRAIN, "-"),
            ("val_kl", "validation (true KL)", C_VAL, "-"),
            ("train_kl_clamped", "train objective term (free bits)", C_TRAIN, "--"),
        ):
            values = col(name)
            if values is not None:
                ax_kl.plot(epoch, values, color=color, ls=style, marker=marker, ms=3, label=label)
                drawn = True
        ax_kl.set_title("KL(q(z|x) ‖ p(z)): true KL near 0 means posterior collapse")
        ax_kl.set_ylabel("KL (nats)")
        if drawn:
            ax_kl.legend(loc="best")
        else:
            no_data(ax_kl, "KL not recorded")

        handles: list = []
        beta = col("beta")
        if beta is not None:
            handles += ax_beta.plot(epoch, beta, color=C_BETA, marker=marker, ms=3, label="β (KL weight)")
        active = col("active_units")
        if active is not None:
            ax_au = ax_beta.twinx()
            handles += ax_au.plot(epoch, active, color=C_ACTIVE, ls=":", marker="s" if marker else None, ms=3, label="active units")
            ax_au.set_ylabel("Active units (count)", color=C_ACTIVE)
            ax_au.tick_params(axis="y", colors=C_ACTIVE)
            ax_au.yaxis.set_major_locator(MaxNLocator(integer=True))
            low, high = np.nanmin(active), np.nanmax(active)
            ax_au.set_ylim(min(0.0, low) - 0.5, high + 0.5)
        ax_beta.set_title("β annealing schedule" + (" and active latent units" if active is not None else ""))
        ax_beta.set_ylabel("β (unitless)", color=C_BETA if beta is not None else "black")
        if beta is not None:
            ax_beta.tick_params(axis="y", colors=C_BETA)
        if handles:
            # On the twin (drawn last) so its line cannot paint over the legend box.
            (ax_au if active is not None else ax_beta).legend(handles=handles, loc="best")
        else:
            no_data(ax_beta, "β and active units not recorded")
        ax_beta.set_xlabel("Epoch")
        ax_beta.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epoch) == 1 and np.isfinite(epoch[0]):
            ax_beta.set_xlim(epoch[0] - 1, epoch[0] + 1)
        return save(fig, path)


# ----------------------------------------------------------------------------------------------
# latent diagnostics


def plot_kl_per_dim(kl_per_dim, path, threshold: float | None = None) -> Path:
    """Bar chart of true KL per latent dimension (nats), largest first.

    Dimensions with KL ~ 0 carry no information about the input (collapsed); the free-bits
    ``threshold`` line shows which dimensions sit at the floor the objective no longer pushes below.
    Bars are labelled with the original dimension index.
    """
    path = target(path)
    kl = _as_1d(kl_per_dim, "kl_per_dim")
    order = np.argsort(-np.nan_to_num(kl, nan=-np.inf), kind="stable")
    values = kl[order]
    with figure((_bar_width(len(kl)), 4.5)) as fig:
        ax = fig.subplots()
        ax.bar(np.arange(len(values)), values, color=C_TRAIN, label="true KL")
        if threshold is not None:
            ax.axhline(float(threshold), color=C_THRESHOLD, ls="--", label=f"free-bits threshold ({threshold:g} nats)")
        ax.axhline(0.0, color="black", lw=0.8)
        total = np.nansum(kl)
        ax.set_title(f"KL per latent dimension (sorted; total {total:.3g} nats over {len(kl)} dims)")
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("KL (nats)")
        _dim_ticks(ax, order)
        ax.legend(loc="upper right")
        return save(fig, path)


def plot_latent_spread(spread_per_dim, path, threshold: float = ACTIVE_STD_THRESHOLD) -> Path:
    """Per-dimension std of posterior means across patients, largest first, coloured active/inactive.

    A dimension whose posterior mean barely moves between patients is unused however large its KL
    term; the ``threshold`` line (default 0.1 = sqrt(0.01), the usual active-unit variance cut-off
    as a std) separates active from inactive units.
    """
    path = target(path)
    spread = _as_1d(spread_per_dim, "spread_per_dim")
    threshold = float(threshold)
    order = np.argsort(-np.nan_to_num(spread, nan=-np.inf), kind="stable")
    values = spread[order]
    active = values > threshold
    n_active = int(active.sum())
    with figure((_bar_width(len(spread)), 4.5)) as fig:
        ax = fig.subplots()
        x = np.arange(len(values))
        ax.bar(x, values, color=np.where(active, C_ACTIVE, C_INACTIVE))
        ax.axhline(threshold, color=C_THRESHOLD, ls="--")
        ax.set_title(f"Spread of posterior means across patients: {n_active} of {len(spread)} dims active")
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("Std of posterior mean (latent units)")
        _dim_ticks(ax, order)
        handles = [
            Line2D([], [], color=C_ACTIVE, lw=8, label=f"active ({n_active})"),
            Line2D([], [], color=C_INACTIVE, lw=8, label=f"inactive ({len(spread) - n_active})"),
            Line2D([], [], color=C_THRESHOLD, ls="--", label=f"threshold (std {threshold:g})"),
        ]
        ax.legend(handles=handles, loc="upper right")
        return save(fig, path)


def plot_reconstructions(
    values,
    recon,
    masks,
    vitals: Sequence[str],
    patient_ids: Sequence,
    path,
    n_patients: int = 3,
    *,
    units: Mapping[str, str] | None = None,
) -> Path:
    """Observed vitals (dots, where ``masks`` == 1) against the model's reconstruction (line).

    A collapsed decoder draws the same population-average curve for every patient; this grid
    (rows = the first ``n_patients`` patients, columns = vitals) makes that visible. Inputs are
    arrays of shape (patients, hours, vitals) in physiological units; ``values`` may be NaN where
    unobserved. ``units`` maps vital name to unit for the axis labels (common names are known).
    """
    path = target(path)
    obs = np.asarray(values, dtype=float)
    rec = np.asarray(recon, dtype=float)
    mask = np.asarray(masks, dtype=float)
    if obs.ndim != 3:
        raise VaelabError(f"values must have shape (patients, hours, vitals), got {obs.shape}")
    if rec.shape != obs.shape or mask.shape != obs.shape:
        raise VaelabError(f"values {obs.shape}, recon {rec.shape} and masks {mask.shape} must have the same shape")
    n_total, n_hours, n_vitals = obs.shape
    vitals = [str(v) for v in vitals]
    patient_ids = list(patient_ids)
    if len(vitals) != n_vitals:
        raise VaelabError(f"{len(vitals)} vital names for {n_vitals} vitals in the arrays")
    if len(patient_ids) != n_total:
        raise VaelabError(f"{len(patient_ids)} patient ids for {n_total} patients in the arrays")
    if n_total == 0 or n_hours == 0 or n_vitals == 0:
        raise VaelabError(f"nothing to plot: arrays have shape {obs.shape}")
    if n_patients < 1:
        raise VaelabError(f"n_patients must be >= 1, got {n_patients}")
    n_rows = min(int(n_patients), n_total)
    hours = np.arange(n_hours)
    observed = (mask > 0.5) & np.isfinite(obs)

    with figure((min(3.2 * n_vitals + 1.0, 24.0), 2.6 * n_rows + 1.0)) as fig:
        axes = fig.subplots(n_rows, n_vitals, squeeze=False, sharex=True)
        fig.suptitle("Observed vitals vs reconstruction")
        for i in range(n_rows):
            for j, vital in enumerate(vitals):
                ax = axes[i, j]
                seen = observed[i, :, j]
                ax.plot(hours, rec[i, :, j], color=C_RECON, lw=1.5, marker="." if n_hours == 1 else None)
                ax.plot(hours[seen], obs[i, seen, j], ls="none", marker="o", ms=3.5, color=C_OBS)
                if not seen.any():
                    ax.text(0.5, 0.92, "no observations", transform=ax.transAxes, ha="center", va="top", fontsize=8, color="0.4")
                ax.set_title(f"patient {patient_ids[i]}: {vital}", fontsize=10)
                unit = _vital_unit(vital, units)
                ax.set_ylabel(f"{vital} ({unit})" if unit else vital)
                if i == n_rows - 1:
                    ax.set_xlabel("Time (hours)")
        handles = [
            Line2D([], [], ls="none", marker="o", ms=4, color=C_OBS, label="observed"),
            Line2D([], [], color=C_RECON, lw=1.5, label="reconstruction"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        return save(fig, path)
