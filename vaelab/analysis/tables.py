"""The comparison table the ``python -m vaelab.results`` CLI prints: runs and trials with the Pareto
front marked, trimmed to what fits a terminal.

    python -m vaelab.results multirun/2024-05-01/12-00-00 outputs/ --csv runs.csv
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import VaelabError
from ..evaluation.objectives import DEFAULT_DIRECTIONS, DEFAULT_OBJECTIVES
from ..io import atomic_path
from .pareto import DIRECTIONS, known, pareto_mask
from .runs import load_runs
from .studies import STUDY_FILE, join_runs_study, load_study, load_sweep

__all__ = [
    "DEFAULT_OBJECTIVE_SPECS",
    "beta_inactive_note",
    "build_table",
    "constant_parameters",
    "default_columns",
    "format_table",
    "main",
    "parse_objectives",
    "row_id_column",
]

DEFAULT_OBJECTIVE_SPECS = tuple(f"{name}:{direction[:3]}" for name, direction in zip(DEFAULT_OBJECTIVES, DEFAULT_DIRECTIONS))
SUMMARY_METRICS = (
    "kl",
    "active_units",
    "latent_dim",
    "free_bits_held_fraction",
    "beta_inactive",
    "latent_spread",
    "mi",
    "recon_mse",
    "epochs_trained",
    "pruned_epoch",
    "train_seconds",
)
# What names a row, best first: a sweep's trial number (the study's, then the runs'), else the short run id.
ROW_IDS = ("number", "sweep_trial", "run")


def parse_objectives(specs: Sequence[str]) -> tuple[list[str], list[str]]:
    """``["kl:max", "recon_mse:min"]`` -> (["kl", "recon_mse"], ["maximize", "minimize"])."""
    names, directions = [], []
    for spec in specs:
        name, sep, direction = str(spec).rpartition(":")
        if not sep or not name or direction.lower() not in DIRECTIONS:
            raise VaelabError(f"--objectives: {spec!r} is not NAME:max or NAME:min")
        names.append(name)
        directions.append(DIRECTIONS[direction.lower()])
    return names, directions


def build_table(args: argparse.Namespace) -> pd.DataFrame:
    """The full table the CLI shows: runs, a study, or both joined; with a boolean ``pareto`` column."""
    if args.storage:
        study = load_study(args.storage, args.study)
        df = join_runs_study(load_runs(args.paths, failed=args.failed), study) if args.paths else study
    elif len(args.paths) == 1 and (Path(args.paths[0]) / STUDY_FILE).is_file():
        df = load_sweep(args.paths[0], failed=args.failed)
    elif args.paths:
        df = load_runs(args.paths, failed=args.failed)
    else:
        raise VaelabError("give run or sweep directories, or --storage URL")

    names, directions = parse_objectives(args.objectives)
    missing = [n for n in names if n not in df.columns]
    if missing:
        print(f"vaelab: warning: objective {missing[0]!r} is not in the table; no Pareto front", file=sys.stderr)
        pareto = np.zeros(len(df), dtype=bool)
    else:
        pareto = pareto_mask(df, names, directions)
    attrs = dict(df.attrs)
    df = df.assign(pareto=pareto)
    df.attrs.update(attrs)

    if args.sort:
        if args.sort not in df.columns:
            raise VaelabError(f"--sort: no column {args.sort!r} (columns: {list(df.columns)})")
        df = df.sort_values(args.sort, ascending=args.ascending, na_position="last", kind="stable")
    elif not missing:
        ascending = args.ascending or directions[0] == "minimize"
        df = df.sort_values(names[0], ascending=ascending, na_position="last", kind="stable")
    df.attrs.update(attrs, objectives_shown=names)
    return df.reset_index(drop=True)


def row_id_column(df: pd.DataFrame) -> str | None:
    """The column that tells the rows apart: the trial number in one sweep, else the short run id
    (the first of ROW_IDS known and distinct in every row; else the first present)."""
    present = [c for c in ROW_IDS if c in df.columns]
    return next((c for c in present if df[c].notna().all() and df[c].is_unique), present[0] if present else None)


def default_columns(df: pd.DataFrame, objectives: Sequence[str] = ()) -> list[str]:
    """What fits a terminal: the row's id (row_id_column), varying parameters, status, the collapse
    summary, factor_r2.*, recon_band_r2.* (which time scales are reconstructed) and probe_*.

    Parameters equal in every row say nothing about the comparison; constant_parameters lists them
    once under the table instead.
    """
    params = [p for p in df.attrs.get("parameters", []) if p in df.columns]
    constant = set(constant_parameters(df))
    wanted = [row_id_column(df)]
    wanted += ["state"] if "status" not in df.columns else []
    wanted += [p for p in params if p not in constant]
    wanted += ["status", *SUMMARY_METRICS, *objectives]
    wanted += [c for c in df.columns if str(c).startswith(("factor_r2.", "recon_band_r2.", "probe_"))]
    out = []
    for column in wanted:
        if column in df.columns and column not in out and column != "pareto":
            out.append(column)
    return out


def constant_parameters(df: pd.DataFrame) -> dict:
    """{parameter: value} for the parameters that are the same in every row (when there are several rows)."""
    if len(df) < 2:
        return {}
    out = {}
    for p in df.attrs.get("parameters", []):
        if p in df.columns and df[p].astype(str).nunique(dropna=False) == 1:
            out[p] = df[p].iloc[0]
    return out


def format_table(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """pandas to_string with 4 significant digits and ``*`` marking the Pareto front (after the
    row's id when that comes first)."""
    shown = df[list(columns)].copy()
    at = 1 if list(columns[:1]) == [row_id_column(df)] else 0
    shown.insert(at, "pareto", np.where(df["pareto"].to_numpy(dtype=bool), "*", ""))
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")


def beta_inactive_note(df: pd.DataFrame) -> str:
    """One line naming the rows whose beta had no effect (``beta_inactive``: every latent dimension
    held by the free-bits floor), or "" when there are none."""
    if "beta_inactive" not in df.columns:
        return ""
    inactive = df["beta_inactive"].eq(True).to_numpy()
    if not inactive.any():
        return ""
    id_column = row_id_column(df)
    ids = sorted(df.loc[inactive, id_column].dropna() if id_column else df.index[inactive])
    what = ("trial" if id_column in ("number", "sweep_trial") else "run") + ("s" if len(ids) > 1 else "")
    return (
        f"beta had no effect in {what} {', '.join(_fmt(v) for v in ids)} ({int(inactive.sum())} of {int(df['beta_inactive'].notna().sum())};"
        " beta_inactive: the free-bits floor held every latent dimension, its KL under loss.free_bits, so the KL term was 0)"
    )


def _fmt(value) -> str:
    return "-" if not known(value) else f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.results",
        description="Compare vaelab runs: one row per run directory (or Optuna trial), Pareto front marked with *.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="run directories, sweep directories or folders holding them")
    parser.add_argument("--storage", help="Optuna storage URL (sqlite:///.../optuna.db, postgresql://...)")
    parser.add_argument("--study", help="study name (needed when the storage holds several)")
    parser.add_argument("--sort", metavar="COL", help="sort by this column (default: the first objective, best first)")
    parser.add_argument("--ascending", action="store_true", help="sort ascending")
    parser.add_argument(
        "--objectives",
        nargs="+",
        default=list(DEFAULT_OBJECTIVE_SPECS),
        metavar="NAME:max|min",
        help="Pareto objectives (default: %(default)s)",
    )
    parser.add_argument("--columns", help="comma-separated columns to show (default: parameters, status, summary metrics)")
    parser.add_argument("--failed", action="store_true", help="also list runs that failed on their input (hidden by default)")
    parser.add_argument("--csv", metavar="OUT.csv", help="write the full table (every column) as CSV")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = build_table(args)
            finally:  # skipped runs are reported even when nothing is left to show
                for w in caught:
                    if type(w.message) is UserWarning:  # ours; library deprecation noise stays out
                        print(f"vaelab: warning: {w.message}", file=sys.stderr)
        if args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
            unknown = [c for c in columns if c not in df.columns]
            if unknown:
                raise VaelabError(f"--columns: no column {unknown[0]!r} (columns: {list(df.columns)})")
        else:
            columns = default_columns(df, df.attrs.get("objectives_shown", ()))
        print(format_table(df, [c for c in columns if c != "pareto"]))
        if not args.columns:  # under the default table: what every row shares, where beta did nothing
            constant = constant_parameters(df)
            if constant:
                print("same in every row: " + " ".join(f"{k}={_fmt(v)}" for k, v in constant.items()))
            note = beta_inactive_note(df)
            if note:
                print(note)
        if args.csv:
            with atomic_path(args.csv) as tmp:
                df.to_csv(tmp, index=False)
            print(f"wrote {len(df)} rows x {df.shape[1]} columns to {args.csv}", file=sys.stderr)
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        return 2
    return 0
