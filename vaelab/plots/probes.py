"""The probe table's figure: one dot-and-whisker panel per label and metric.

Each panel shows one label's metric (AUROC, AUPRC or R²) for the two probes side by side (the linear
probe, named for what it is on that label, logistic or ridge, and the gradient-boosted trees), with
a dot per feature set (coloured: embedding, summary statistics, both) and its 95% bootstrap interval
as the whisker. The dashed line is chance (AUROC 0.5, AUPRC the test positive rate, R² 0), so a dot
near it says the features hold nothing about the label. R² axes stop at -1: a probe worse than that
(far worse than predicting the mean) is a triangle on the floor, without its whisker.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..evaluation.probe_table import FEATURE_SETS, PROBES
from .common import figure, no_data, save, target

FEATURE_COLOURS = {"embedding": "tab:blue", "summary": "tab:orange", "embedding+summary": "tab:green"}
FEATURE_NAMES = {"embedding": "embedding", "summary": "summary statistics", "embedding+summary": "embedding + summary"}
METRIC_NAMES = {"auroc": "AUROC", "auprc": "AUPRC", "r2": "R²"}
PANEL_COLUMNS = 4
R2_FLOOR = -1.0  # R² panels stop here; a worse value is drawn as a triangle on the floor


def _probe_name(probe: str, kind: str) -> str:
    if probe == "linear":
        return "logistic" if kind == "binary" else "ridge"
    return "boosted trees"


def plot_probe_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """The figure of a ``probe_table`` result, as PNG at ``path``; labels the table skipped are
    named under the panels."""
    path = target(path)
    panels = list(dict.fromkeys(zip(table["label"], table["metric"])))
    columns = max(1, min(PANEL_COLUMNS, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    offsets = dict(zip(FEATURE_SETS, np.linspace(-0.22, 0.22, len(FEATURE_SETS))))
    with figure((3.3 * columns, 2.9 * rows + 0.6)) as fig:
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        if not panels:
            no_data(axes[0], "no label could be probed")
            axes[0].set_axis_off()
        for ax, (label, metric) in zip(axes, panels):
            part = table[(table["label"] == label) & (table["metric"] == metric)]
            kind = part["kind"].iloc[0]
            for features, group in part.groupby("features", sort=False):
                x = np.array([PROBES.index(p) for p in group["probe"]]) + offsets[features]
                value = group["value"].to_numpy(float)
                low = np.nan_to_num(value - group["ci_low"].to_numpy(float))
                high = np.nan_to_num(group["ci_high"].to_numpy(float) - value)
                colour = FEATURE_COLOURS[features]
                floored = value < R2_FLOOR if metric == "r2" else np.zeros(len(value), bool)
                ok = ~floored
                ax.errorbar(x[ok], value[ok], yerr=[low[ok], high[ok]], fmt="o", color=colour, capsize=3, markersize=5)
                ax.plot(x[floored], np.full(floored.sum(), R2_FLOOR), "v", color=colour, markersize=6)
            ax.axhline(part["chance"].iloc[0], color="0.5", linestyle="--", linewidth=1)
            ax.set_xticks(range(len(PROBES)), [_probe_name(p, kind) for p in PROBES])
            ax.set_xlim(-0.6, len(PROBES) - 0.4)
            if metric in ("auroc", "auprc"):
                ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
            elif metric == "r2":
                ax.set_ylim(max(R2_FLOOR - 0.05, ax.get_ylim()[0]), 1.02)
            ax.set_title(f"{label}\n{METRIC_NAMES.get(metric, metric)}, {int(part['n_test'].iloc[0])} test stays", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        present = [f for f in FEATURE_SETS if f in set(table["features"])]
        if present:
            handles = [Line2D([], [], marker="o", linestyle="", color=FEATURE_COLOURS[f], label=FEATURE_NAMES[f]) for f in present]
            fig.legend(handles=handles, loc="outside upper center", ncols=len(present), frameon=False)
        skipped = table.attrs.get("skipped") or {}
        if skipped:
            fig.supxlabel("skipped: " + "; ".join(f"{name} ({why})" for name, why in skipped.items()), fontsize=7, color="0.4", wrap=True)
        return save(fig, path)
