"""PNG figures of a sweep: which settings keep the latent informative, what the objectives trade off.

Each function takes a table (or a matrix) of the sweep's runs and an output path, writes one PNG and
returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator, NullFormatter

from ..errors import VaelabError
from .common import C_TRAIN, figure, no_data, save, target

__all__ = ["plot_kl_heatmap", "plot_param_vs_objective", "plot_pareto"]


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise VaelabError(f"{what}: column(s) {missing} not in the table (have {list(df.columns)})")


def _row_mask(df: pd.DataFrame, mask, what: str) -> np.ndarray:
    """A boolean per row from a boolean sequence or the name of a boolean column (missing = False);
    all False when ``mask`` is None."""
    if mask is None:
        return np.zeros(len(df), dtype=bool)
    if isinstance(mask, str):
        _require_columns(df, [mask], what)
        mask = df[mask]
    out = np.asarray(pd.Series(mask).fillna(False), dtype=bool).reshape(-1)
    if len(out) != len(df):
        raise VaelabError(f"{what}: pareto_mask has {len(out)} entries for {len(df)} rows")
    return out


def _pareto_rings(ax, xs: np.ndarray, ys: np.ndarray, label: str):
    """Open black rings around the Pareto front's points: the one marker of the front in every figure."""
    return ax.scatter(xs, ys, s=90, facecolors="none", edgecolors="black", lw=1.6, zorder=4, label=label)


def log_ticks(lo: float, hi: float, most: int = 4) -> list[float]:
    """At most ``most`` readable ticks for a log axis over [lo, hi] (lo > 0): 1, 2, 5 x 10^k, else
    1 and 3 x 10^k, else every n-th decade; within one decade, plain linear steps."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for subs in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**k for k in decades for m in subs if lo <= m * 10.0**k <= hi]
        if len(ticks) <= most:
            break
    if len(ticks) < 2:
        ticks = [t for t in MaxNLocator(nbins=most - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]
    return list(dict.fromkeys(float(f"{t:.6g}") for t in ticks[:: max(1, math.ceil(len(ticks) / most))]))


def _numeric_or_categorical(series: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numbers as floats; anything else as category positions plus their labels."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float), None
    present = series.dropna()
    categories = sorted({str(v) for v in present})
    lookup = {c: i for i, c in enumerate(categories)}
    positions = np.array([np.nan if pd.isna(v) else lookup[str(v)] for v in series], dtype=float)
    return positions, categories


def plot_kl_heatmap(kl_matrix, run_labels: Sequence[str], path) -> Path:
    """Heatmap of KL per latent dimension (nats) for each run of a sweep.

    Shows at a glance which settings keep many dimensions informative and which collapse to a few.
    Rows are runs (``run_labels``), columns latent dimensions; NaN cells (a run with fewer
    dimensions) are drawn grey.
    """
    path = target(path)
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
    with figure((width, min(16.0, max(3.0, 0.35 * n_runs + 1.8)))) as fig:
        ax = fig.subplots()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
        image = ax.imshow(np.ma.masked_invalid(kl), aspect="auto", cmap=cmap, norm=Normalize(0.0, vmax), interpolation="nearest")
        colorbar = fig.colorbar(image, ax=ax)
        colorbar.set_label("KL per dimension (nats)")
        if n_runs * n_dims <= 200:
            for r in range(n_runs):
                for d in range(n_dims):
                    if np.isfinite(kl[r, d]):
                        ax.text(
                            d,
                            r,
                            f"{kl[r, d]:.2g}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if kl[r, d] < 0.6 * vmax else "black",
                        )
        step = max(1, int(np.ceil(n_dims / 48)))
        ax.set_xticks(np.arange(0, n_dims, step))
        ax.set_yticks(np.arange(n_runs))
        ax.set_yticklabels(labels, fontsize=8 if n_runs > 20 else 9)
        ax.set_xlabel("Latent dimension (index)")
        ax.set_ylabel("Run")
        ax.set_title("KL per latent dimension across runs")
        return save(fig, path)


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
    path = target(path)
    if not isinstance(df, pd.DataFrame):
        raise VaelabError(f"plot_pareto needs a pandas DataFrame, got {type(df).__name__}")
    _require_columns(df, [x, y] + ([color] if color is not None else []), "plot_pareto")
    pareto = _row_mask(df, pareto_mask, "plot_pareto")
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    dropped = int((~keep).sum())

    with figure((7.5, 5.5)) as fig:
        ax = fig.subplots()
        title = f"{y} vs {x}"
        if dropped:
            title += f" ({dropped} row{'s' if dropped != 1 else ''} without both values left out)"
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if not keep.any():
            no_data(ax, "no rows with finite values for both objectives")
            return save(fig, path)

        handles: list = []
        if color is None:
            handles.append(ax.scatter(xs[keep], ys[keep], s=28, color=C_TRAIN, alpha=0.75, label="trials"))
        else:
            cvals, categories = _numeric_or_categorical(df[color])
            if categories is None:
                cvals_k = cvals[keep]
                finite_c = np.isfinite(cvals_k)
                if finite_c.any():
                    points = ax.scatter(
                        xs[keep][finite_c], ys[keep][finite_c], c=cvals_k[finite_c], s=28, cmap="viridis", alpha=0.85, label="trials"
                    )
                    fig.colorbar(points, ax=ax).set_label(color)
                    handles.append(points)
                if (~finite_c).any():
                    handles.append(
                        ax.scatter(xs[keep][~finite_c], ys[keep][~finite_c], s=28, color="0.6", label=f"trials ({color} missing)")
                    )
            else:
                palette = matplotlib.colormaps["tab10"]
                for k, category in enumerate(categories):
                    sel = keep & (cvals == k)
                    handles.append(ax.scatter(xs[sel], ys[sel], s=28, color=palette(k % 10), alpha=0.85, label=f"{color} = {category}"))
                missing = keep & ~np.isfinite(cvals)
                if missing.any():
                    handles.append(ax.scatter(xs[missing], ys[missing], s=28, color="0.6", label=f"{color} missing"))
        front = pareto & keep
        if front.any():
            idx = np.flatnonzero(front)
            idx = idx[np.lexsort((ys[idx], xs[idx]))]
            ax.plot(xs[idx], ys[idx], color="black", lw=1.2, zorder=3)
            handles.append(_pareto_rings(ax, xs[idx], ys[idx], f"Pareto front ({len(idx)})"))
        ax.legend(handles=handles, loc="best", fontsize=8)
        return save(fig, path)


def plot_param_vs_objective(df: pd.DataFrame, params: list[str], objectives: list[str], path, pareto_mask=None) -> Path:
    """Grid of scatter plots: each sweep parameter (columns) against each objective (rows).

    Shows which hyperparameters drive an objective (e.g. β against active units). A parameter whose
    name contains ``beta`` gets a log x axis when all its values are > 0, since β is swept over
    orders of magnitude, with a few plainly written ticks (``log_ticks``); non-numeric parameters
    (e.g. schedule kind) are shown as categories. ``pareto_mask`` (a boolean per row, or the name of
    a boolean column) rings the Pareto front's trials in every panel, as in ``plot_pareto``.
    """
    path = target(path)
    if not isinstance(df, pd.DataFrame):
        raise VaelabError(f"plot_param_vs_objective needs a pandas DataFrame, got {type(df).__name__}")
    params, objectives = list(params), list(objectives)
    if not params or not objectives:
        raise VaelabError("plot_param_vs_objective needs at least one parameter and one objective column")
    _require_columns(df, params + objectives, "plot_param_vs_objective")
    pareto = _row_mask(df, pareto_mask, "plot_param_vs_objective")
    n_rows, n_cols = len(objectives), len(params)

    with figure((min(3.6 * n_cols + 0.8, 24.0), min(3.0 * n_rows + 1.0, 24.0))) as fig:
        axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey="row")
        fig.suptitle("Sweep parameters vs objectives")
        legend: dict[str, object] = {}
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
                    legend["trials"] = ax.scatter(xs[keep], ys[keep], s=20, color=C_TRAIN, alpha=0.75, label="trials")
                    front = keep & pareto
                    if front.any():
                        legend["pareto"] = _pareto_rings(ax, xs[front], ys[front], f"Pareto front ({int(pareto.sum())})")
                else:
                    no_data(ax, "no finite values")
                if log_x:
                    ax.set_xscale("log")
                    ticks = log_ticks(*ax.get_xlim())
                    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                    ax.xaxis.set_minor_formatter(NullFormatter())
                if categories is not None:
                    ax.set_xticks(np.arange(len(categories)))
                    ax.set_xticklabels(categories, rotation=30 if len(categories) > 3 else 0, fontsize=8)
                    ax.set_xlim(-0.5, max(len(categories), 1) - 0.5)
                if i == n_rows - 1:
                    ax.set_xlabel(f"{param} (log scale)" if log_x else param)
                if j == 0:
                    ax.set_ylabel(objective)
                ax.grid(True, alpha=0.3)
        if "pareto" in legend:
            fig.legend(handles=list(legend.values()), loc="outside upper right", fontsize=8)
        return save(fig, path)
