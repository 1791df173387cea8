"""PNG plots for a run directory: do the curves, per-dimension KL and latent spread show collapse?

Every function takes plain numpy/pandas inputs and an output path, writes one PNG and returns the
path. Figures are built with the object-oriented ``Figure`` API on an Agg canvas, never through
``pyplot``, so nothing needs a display, no figure state leaks between calls (or between parallel
sweep workers), and importing this module does not change the caller's pyplot backend. Each PNG is written to a temporary file in the target directory and
moved into place with ``os.replace``: a reader never sees half a file, and a failed write leaves
the old plot (or nothing) behind.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .atomic import atomic_path
from .errors import VaelabError

__all__ = [
    "ACTIVE_STD_THRESHOLD",
    "plot_kl_heatmap",
    "plot_kl_per_dim",
    "plot_latent_spread",
    "plot_param_vs_objective",
    "plot_pareto",
    "plot_reconstructions",
    "plot_training_curves",
]

DPI = 110
# A unit is active when Var_x(E[z|x]) > 0.01 (Burda et al. 2016); as a standard deviation that is 0.1.
ACTIVE_STD_THRESHOLD = float(np.sqrt(0.01))

_C_TRAIN = "tab:blue"
_C_VAL = "tab:orange"
_C_BETA = "tab:green"
_C_ACTIVE = "tab:purple"
_C_OBS = "black"
_C_RECON = "tab:red"
_C_INACTIVE = "tab:gray"
_C_THRESHOLD = "tab:red"

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


# ----------------------------------------------------------------------------------------------
# shared plumbing


@contextlib.contextmanager
def _figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A fresh Agg-backed figure outside pyplot's registry, cleared afterwards even on error."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def _target(path: str | os.PathLike[str]) -> Path:
    """Check the output path (and create its directory) before any drawing work is done."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise VaelabError(f"plot path {path} must end in .png (plots are always written as PNG)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"cannot create the directory for plot {path}: {exc}") from exc
    return path


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; raise VaelabError naming the path on failure."""
    path = _target(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    except OSError as exc:
        raise VaelabError(f"cannot write plot {path}: {exc}") from exc
    return path


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


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise VaelabError(f"{what}: column(s) {missing} not in the table (have {list(df.columns)})")


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
    path = _target(path)
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

    with _figure((8.0, 9.0)) as fig:
        ax_rec, ax_kl, ax_beta = fig.subplots(3, 1, sharex=True)
        fig.suptitle("Training curves")

        drawn = False
        for name, label, color in (("train_recon", "train", _C_TRAIN), ("val_recon", "validation", _C_VAL)):
            values = col(name)
            if values is not None:
                ax_rec.plot(epoch, values, color=color, marker=marker, ms=3, label=label)
                drawn = True
        ax_rec.set_title("Reconstruction loss")
        ax_rec.set_ylabel(f"Reconstruction ({recon_unit})" if recon_unit else "Reconstruction")
        if drawn:
            ax_rec.legend(loc="best")
        else:
            _no_data(ax_rec, "reconstruction not recorded")

        drawn = False
        for name, label, color, style in (
            ("train_kl", "train (true KL)", _C_TRAIN, "-"),
            ("val_kl", "validation (true KL)", _C_VAL, "-"),
            ("train_kl_clamped", "train objective term (free bits)", _C_TRAIN, "--"),
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
            _no_data(ax_kl, "KL not recorded")

        handles: list = []
        beta = col("beta")
        if beta is not None:
            handles += ax_beta.plot(epoch, beta, color=_C_BETA, marker=marker, ms=3, label="β (KL weight)")
        active = col("active_units")
        if active is not None:
            ax_au = ax_beta.twinx()
            handles += ax_au.plot(
                epoch, active, color=_C_ACTIVE, ls=":", marker="s" if marker else None, ms=3, label="active units"
            )
            ax_au.set_ylabel("Active units (count)", color=_C_ACTIVE)
            ax_au.tick_params(axis="y", colors=_C_ACTIVE)
            ax_au.yaxis.set_major_locator(MaxNLocator(integer=True))
            low, high = np.nanmin(active), np.nanmax(active)
            ax_au.set_ylim(min(0.0, low) - 0.5, high + 0.5)
        ax_beta.set_title("β annealing schedule" + (" and active latent units" if active is not None else ""))
        ax_beta.set_ylabel("β (unitless)", color=_C_BETA if beta is not None else "black")
        if beta is not None:
            ax_beta.tick_params(axis="y", colors=_C_BETA)
        if handles:
            # On the twin (drawn last) so its line cannot paint over the legend box.
            (ax_au if active is not None else ax_beta).legend(handles=handles, loc="best")
        else:
            _no_data(ax_beta, "β and active units not recorded")
        ax_beta.set_xlabel("Epoch")
        ax_beta.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epoch) == 1 and np.isfinite(epoch[0]):
            ax_beta.set_xlim(epoch[0] - 1, epoch[0] + 1)
        return _save(fig, path)


# ----------------------------------------------------------------------------------------------
# latent diagnostics


def plot_kl_per_dim(kl_per_dim, path, threshold: float | None = None) -> Path:
    """Bar chart of true KL per latent dimension (nats), largest first.

    Dimensions with KL ~ 0 carry no information about the input (collapsed); the free-bits
    ``threshold`` line shows which dimensions sit at the floor the objective no longer pushes below.
    Bars are labelled with the original dimension index.
    """
    path = _target(path)
    kl = _as_1d(kl_per_dim, "kl_per_dim")
    order = np.argsort(-np.nan_to_num(kl, nan=-np.inf), kind="stable")
    values = kl[order]
    with _figure((_bar_width(len(kl)), 4.5)) as fig:
        ax = fig.subplots()
        ax.bar(np.arange(len(values)), values, color=_C_TRAIN, label="true KL")
        if threshold is not None:
            ax.axhline(float(threshold), color=_C_THRESHOLD, ls="--", label=f"free-bits threshold ({threshold:g} nats)")
        ax.axhline(0.0, color="black", lw=0.8)
        total = np.nansum(kl)
        ax.set_title(f"KL per latent dimension (sorted; total {total:.3g} nats over {len(kl)} dims)")
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("KL (nats)")
        _dim_ticks(ax, order)
        ax.legend(loc="upper right")
        return _save(fig, path)


def plot_latent_spread(spread_per_dim, path, threshold: float = ACTIVE_STD_THRESHOLD) -> Path:
    """Per-dimension std of posterior means across patients, largest first, coloured active/inactive.

    A dimension whose posterior mean barely moves between patients is unused however large its KL
    term; the ``threshold`` line (default 0.1 = sqrt(0.01), the usual active-unit variance cut-off
    as a std) separates active from inactive units.
    """
    path = _target(path)
    spread = _as_1d(spread_per_dim, "spread_per_dim")
    threshold = float(threshold)
    order = np.argsort(-np.nan_to_num(spread, nan=-np.inf), kind="stable")
    values = spread[order]
    active = values > threshold
    n_active = int(active.sum())
    with _figure((_bar_width(len(spread)), 4.5)) as fig:
        ax = fig.subplots()
        x = np.arange(len(values))
        ax.bar(x, values, color=np.where(active, _C_ACTIVE, _C_INACTIVE))
        ax.axhline(threshold, color=_C_THRESHOLD, ls="--")
        ax.set_title(f"Spread of posterior means across patients: {n_active} of {len(spread)} dims active")
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("Std of posterior mean (latent units)")
        _dim_ticks(ax, order)
        handles = [
            Line2D([], [], color=_C_ACTIVE, lw=8, label=f"active ({n_active})"),
            Line2D([], [], color=_C_INACTIVE, lw=8, label=f"inactive ({len(spread) - n_active})"),
            Line2D([], [], color=_C_THRESHOLD, ls="--", label=f"threshold (std {threshold:g})"),
        ]
        ax.legend(handles=handles, loc="upper right")
        return _save(fig, path)


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
    path = _target(path)
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

    with _figure((min(3.2 * n_vitals + 1.0, 24.0), 2.6 * n_rows + 1.0)) as fig:
        axes = fig.subplots(n_rows, n_vitals, squeeze=False, sharex=True)
        fig.suptitle("Observed vitals vs reconstruction")
        for i in range(n_rows):
            for j, vital in enumerate(vitals):
                ax = axes[i, j]
                seen = observed[i, :, j]
                ax.plot(hours, rec[i, :, j], color=_C_RECON, lw=1.5, marker="." if n_hours == 1 else None)
                ax.plot(hours[seen], obs[i, seen, j], ls="none", marker="o", ms=3.5, color=_C_OBS)
                if not seen.any():
                    ax.text(0.5, 0.92, "no observations", transform=ax.transAxes, ha="center", va="top",
                            fontsize=8, color="0.4")
                ax.set_title(f"patient {patient_ids[i]}: {vital}", fontsize=10)
                unit = _vital_unit(vital, units)
                ax.set_ylabel(f"{vital} ({unit})" if unit else vital)
                if i == n_rows - 1:
                    ax.set_xlabel("Time (hours)")
        handles = [
            Line2D([], [], ls="none", marker="o", ms=4, color=_C_OBS, label="observed"),
            Line2D([], [], color=_C_RECON, lw=1.5, label="reconstruction"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        return _save(fig, path)


def plot_kl_heatmap(kl_matrix, run_labels: Sequence[str], path) -> Path:
    """Heatmap of KL per latent dimension (nats) for each run of a sweep.

    Shows at a glance which settings keep many dimensions informative and which collapse to a few.
    Rows are runs (``run_labels``), columns latent dimensions; NaN cells (a run with fewer
    dimensions) are drawn grey.
    """
    path = _target(path)
    kl = np.asarray(kl_matrix, dtype=float)
    if kl.ndim == 1:
        kl = kl.reshape(1, -1)
    if kl.ndim != 2 or kl.size == 0:
        raise VaelabError(f"kl_matrix must be 2-D (runs, latent dims) and non-empty, got shape {kl.shape}")
    labels = [str(label) for label in run_labels]
    if len(labels) != kl.shape[0]:
        raise VaelabError(f"{len(labels)} run labels for {kl.shape[0]} rows of kl_matrix")
    n_runs, n_dims = kl.shape
    finite = kl[np.isfinite(kl)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    width = min(18.0, max(6.0, 0.3 * n_dims + 0.07 * max(map(len, labels)) + 3.0))
    with _figure((width, min(16.0, max(3.0, 0.35 * n_runs + 1.8)))) as fig:
        ax = fig.subplots()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
        image = ax.imshow(np.ma.masked_invalid(kl), aspect="auto", cmap=cmap, norm=Normalize(0.0, vmax),
                          interpolation="nearest")
        colorbar = fig.colorbar(image, ax=ax)
        colorbar.set_label("KL per dimension (nats)")
        if n_runs * n_dims <= 200:
            for r in range(n_runs):
                for d in range(n_dims):
                    if np.isfinite(kl[r, d]):
                        ax.text(d, r, f"{kl[r, d]:.2g}", ha="center", va="center", fontsize=7,
                                color="white" if kl[r, d] < 0.6 * vmax else "black")
        step = max(1, int(np.ceil(n_dims / 48)))
        ax.set_xticks(np.arange(0, n_dims, step))
        ax.set_yticks(np.arange(n_runs))
        ax.set_yticklabels(labels, fontsize=8 if n_runs > 20 else 9)
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("Run")
        ax.set_title("KL per latent dimension across runs")
        return _save(fig, path)


# ----------------------------------------------------------------------------------------------
# sweeps


def _numeric_or_categorical(series: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numbers as floats; anything else as category positions plus their labels."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float), None
    present = series.dropna()
    categories = sorted({str(v) for v in present})
    lookup = {c: i for i, c in enumerate(categories)}
    positions = np.array([np.nan if pd.isna(v) else lookup[str(v)] for v in series], dtype=float)
    return positions, categories


def plot_pareto(
    df: pd.DataFrame,
    x: str,
    y: str,
    path,
    pareto_mask=None,
    color: str | None = None,
) -> Path:
    """Scatter of two sweep objectives with the Pareto front highlighted and joined.

    Makes the trade-off (e.g. reconstruction vs active units) and the non-dominated trials visible.
    ``pareto_mask`` is a boolean per row (or the name of a boolean column); ``color`` names a
    column to colour points by (a colour bar when numeric, a legend otherwise). Rows where ``x`` or
    ``y`` is missing (failed trials) are left out and counted in the title.
    """
    path = _target(path)
    if not isinstance(df, pd.DataFrame):
        raise VaelabError(f"plot_pareto needs a pandas DataFrame, got {type(df).__name__}")
    _require_columns(df, [x, y] + ([color] if color is not None else []), "plot_pareto")
    if isinstance(pareto_mask, str):
        _require_columns(df, [pareto_mask], "plot_pareto")
        pareto_mask = df[pareto_mask]
    if pareto_mask is not None:
        pareto = np.asarray(pd.Series(pareto_mask).fillna(False), dtype=bool).reshape(-1)
        if len(pareto) != len(df):
            raise VaelabError(f"pareto_mask has {len(pareto)} entries for {len(df)} rows")
    else:
        pareto = np.zeros(len(df), dtype=bool)
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    dropped = int((~keep).sum())

    with _figure((7.5, 5.5)) as fig:
        ax = fig.subplots()
        title = f"{y} vs {x}"
        if dropped:
            title += f" ({dropped} row{'s' if dropped != 1 else ''} without both values left out)"
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if not keep.any():
            _no_data(ax, "no rows with finite values for both objectives")
            return _save(fig, path)

        handles: list = []
        if color is None:
            handles.append(ax.scatter(xs[keep], ys[keep], s=28, color=_C_TRAIN, alpha=0.75, label="trials"))
        else:
            cvals, categories = _numeric_or_categorical(df[color])
            if categories is None:
                cvals_k = cvals[keep]
                finite_c = np.isfinite(cvals_k)
                if finite_c.any():
                    points = ax.scatter(xs[keep][finite_c], ys[keep][finite_c], c=cvals_k[finite_c], s=28,
                                        cmap="viridis", alpha=0.85, label="trials")
                    fig.colorbar(points, ax=ax).set_label(color)
                    handles.append(points)
                if (~finite_c).any():
                    handles.append(ax.scatter(xs[keep][~finite_c], ys[keep][~finite_c], s=28, color="0.6",
                                              label=f"trials ({color} missing)"))
            else:
                palette = matplotlib.colormaps["tab10"]
                for k, category in enumerate(categories):
                    sel = keep & (cvals == k)
                    handles.append(ax.scatter(xs[sel], ys[sel], s=28, color=palette(k % 10), alpha=0.85,
                                              label=f"{color} = {category}"))
                missing = keep & ~np.isfinite(cvals)
                if missing.any():
                    handles.append(ax.scatter(xs[missing], ys[missing], s=28, color="0.6",
                                              label=f"{color} missing"))
        front = pareto & keep
        if front.any():
            idx = np.flatnonzero(front)
            idx = idx[np.lexsort((ys[idx], xs[idx]))]
            ax.plot(xs[idx], ys[idx], color="black", lw=1.2, zorder=3)
            handles.append(ax.scatter(xs[idx], ys[idx], s=90, facecolors="none", edgecolors="black", lw=1.6,
                                      zorder=4, label=f"Pareto front ({len(idx)})"))
        ax.legend(handles=handles, loc="best", fontsize=8)
        return _save(fig, path)


def plot_param_vs_objective(df: pd.DataFrame, params: list[str], objectives: list[str], path) -> Path:
    """Grid of scatter plots: each sweep parameter (columns) against each objective (rows).

    Shows which hyperparameters drive an objective (e.g. β against active units). A parameter whose
    name contains ``beta`` gets a log x axis when all its values are > 0, since β is swept over
    orders of magnitude; non-numeric parameters (e.g. schedule kind) are shown as categories.
    """
    path = _target(path)
    if not isinstance(df, pd.DataFrame):
        raise VaelabError(f"plot_param_vs_objective needs a pandas DataFrame, got {type(df).__name__}")
    params, objectives = list(params), list(objectives)
    if not params or not objectives:
        raise VaelabError("plot_param_vs_objective needs at least one parameter and one objective column")
    _require_columns(df, params + objectives, "plot_param_vs_objective")
    n_rows, n_cols = len(objectives), len(params)

    with _figure((min(3.6 * n_cols + 0.8, 24.0), min(3.0 * n_rows + 1.0, 24.0))) as fig:
        axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey="row")
        fig.suptitle("Sweep parameters vs objectives")
        for j, param in enumerate(params):
            xs, categories = _numeric_or_categorical(df[param])
            log_x = False
            if categories is None and "beta" in param.lower():
                finite_x = xs[np.isfinite(xs)]
                log_x = finite_x.size > 0 and bool((finite_x > 0).all())
            for i, objective in enumerate(objectives):
                ax = axes[i, j]
                ys = pd.to_numeric(df[objective], errors="coerce").to_numpy(dtype=float)
                keep = np.isfinite(xs) & np.isfinite(ys)
                if keep.any():
                    ax.scatter(xs[keep], ys[keep], s=20, color=_C_TRAIN, alpha=0.75)
                else:
                    _no_data(ax, "no finite values")
                if log_x:
                    ax.set_xscale("log")
                if categories is not None:
                    ax.set_xticks(np.arange(len(categories)))
                    ax.set_xticklabels(categories, rotation=30 if len(categories) > 3 else 0, fontsize=8)
                    ax.set_xlim(-0.5, max(len(categories), 1) - 0.5)
                if i == n_rows - 1:
                    ax.set_xlabel(f"{param} (log scale)" if log_x else param)
                if j == 0:
                    ax.set_ylabel(objective)
                ax.grid(True, alpha=0.3)
        return _save(fig, path)
