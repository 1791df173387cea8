"""The multiscale_recovery table: per arm, mean ± sd over seeds of what the latent and the decoder capture.

Usage: python experiments/multiscale_recovery/summarize.py [OUT_DIR] [--csv OUT.csv] [--markdown]

Columns a data set lacks are left out: factor R² needs the synthetic data's true factors, the probe
AUROC (beside the summary-statistics baseline) a label such as PhysioNet's sepsis.

OUT_DIR holds one folder per arm (run.sh's layout: <arm>/seed_<n>/). Columns: held-out factor
recovery R² (kernel-ridge probe on the posterior means) per factor, active units, true KL,
reconstruction MSE (normalized) and its split by time scale (lt6h / 6to30h / gt30h), the share of
each band's signal the reconstruction explains, and training seconds. The PCA row is the factor
probe on an 8-component PCA of the same inputs (a linear baseline that needs no training).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from vaelab.results import load_runs

ARM_ORDER = [
    "plan",
    "multiscale",
    "latent_groups",
    "std_pooling",
    "spectral",
    "spectral_0.1",
    "spectral_head",
    "spectral_head_std",
    "spectral_head_0.3",
    "no_branch_loss",
    "groups_no_branch_loss",
    "groups_no_branch_head",
    "groups_no_branch_head1",
    "groups_no_branch_head_std",
    "groups_no_branch_head_48",
    "groups_no_branch_head_quantile1",
    "groups_no_branch_head_quantile2",
    "groups_no_branch_quantile1",
    "recovery_sweep_best",
    "recovery_sweep_best_head",
    "recovery_sweep_best_planloss",
    "recovery_sweep_best_planloss_head",
    "recovery_sweep_best_nobn",
    "default",
]  # run.sh's arms; others follow by name
BRANCHES = ["local", "hourly", "daily", "multiday"]
BANDS = ["lt6h", "6to30h", "gt30h"]
FACTORS = ["level", "daily_amplitude", "trend", "episode_rate", "daily_cos", "daily_sin"]
COLUMNS = (
    [f"factor_r2.{f}" for f in FACTORS]
    + ["active_units", "kl", "recon_mse", "recon_mse_band.lt6h", "recon_mse_band.6to30h", "recon_mse_band.gt30h"]
    + ["recon_band_r2.lt6h", "recon_band_r2.6to30h", "recon_band_r2.gt30h", "probe_auroc", "probe_baseline_auroc"]
    + ["epochs_trained", "train_seconds"]
)
SHORT = {
    "factor_r2.level": "R2 level",
    "factor_r2.daily_amplitude": "R2 daily amp",
    "factor_r2.trend": "R2 trend",
    "factor_r2.episode_rate": "R2 episode rate",
    "factor_r2.daily_cos": "R2 daily cos",
    "factor_r2.daily_sin": "R2 daily sin",
    "active_units": "AU",
    "kl": "KL",
    "recon_mse": "recon MSE",
    "recon_mse_band.lt6h": "MSE <6h",
    "recon_mse_band.6to30h": "MSE 6-30h",
    "recon_mse_band.gt30h": "MSE >30h",
    "recon_band_r2.lt6h": "expl <6h",
    "recon_band_r2.6to30h": "expl 6-30h",
    "recon_band_r2.gt30h": "expl >30h",
    "probe_auroc": "probe AUROC",
    "probe_baseline_auroc": "summary-stats AUROC",
    "epochs_trained": "epochs",
    "train_seconds": "train s",
}


def summarize(out_dir: Path) -> pd.DataFrame:
    """One row per arm (mean ± sd over its seeds) plus the PCA baseline row."""
    runs = load_runs(out_dir)
    runs = runs[runs["status"] == "ok"].copy()
    runs["arm"] = [Path(d).relative_to(out_dir).parts[0] for d in runs["run_dir"]]
    rows = []
    for arm, group in _by_arm(runs):
        row = {"arm": arm, "seeds": len(group)}
        for column in (c for c in COLUMNS if c in runs.columns):  # factors: synthetic data; probes: labelled data
            row[SHORT[column]] = _mean_sd(pd.to_numeric(group[column], errors="coerce"))
        rows.append(row)
    if "factor_r2_pca.level" in runs.columns:
        pca = {"arm": "PCA-8 (no training)", "seeds": len(runs)}
        for factor in FACTORS:
            pca[SHORT[f"factor_r2.{factor}"]] = _mean_sd(pd.to_numeric(runs[f"factor_r2_pca.{factor}"], errors="coerce"))
        rows.append(pca)
    return pd.DataFrame(rows).fillna("")


def _by_arm(runs: pd.DataFrame):
    rank = {arm: i for i, arm in enumerate(ARM_ORDER)}
    return sorted(runs.groupby("arm"), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def branch_table(out_dir: Path) -> pd.DataFrame:
    """Per arm and decoder branch, the MSE of the branch's own output in each band (mean over seeds):
    does each branch carry the time scale its name says?"""
    runs = load_runs(out_dir)
    runs = runs[runs["status"] == "ok"].copy()
    runs["arm"] = [Path(d).relative_to(out_dir).parts[0] for d in runs["run_dir"]]
    rows = []
    for arm, group in _by_arm(runs):
        for branch in BRANCHES:
            columns = [f"branch_recon_mse_band.{branch}.{band}" for band in BANDS]
            if all(c in group.columns for c in columns) and group[columns].notna().all().all():
                rows.append({"arm": arm, "branch": branch, **{f"MSE {band}": f"{group[c].mean():.3f}" for band, c in zip(BANDS, columns)}})
        if rows and rows[-1]["arm"] == arm:
            merged = {f"MSE {band}": f"{group[f'recon_mse_band.{band}'].mean():.3f}" for band in BANDS}
            rows.append({"arm": arm, "branch": "merged output", **merged})
    return pd.DataFrame(rows)


def _mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    digits = 0 if values.abs().max() >= 100 else (1 if values.abs().max() >= 10 else 3)
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", nargs="?", default="multirun/multiscale_recovery")
    p.add_argument("--csv", help="also write the table as CSV")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    p.add_argument("--branches", action="store_true", help="the per-branch, per-band MSE table instead")
    args = p.parse_args(argv)
    table = branch_table(Path(args.out_dir)) if args.branches else summarize(Path(args.out_dir))
    print(_markdown(table) if args.markdown else table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
