"""``python -m vaelab.probe LATENTS.h5 --labels LAYER2.h5``: the downstream probe table of any embedding.

Reads the embedding (dataset ``mu``, one row per stay, and ``patient_ids``: the layout of the
``vae_latents.h5`` every run writes, see vaelab/data/latents.py; any other embedding written the
same way works) and the Layer-2 file of the same stays with its ``labels/`` group, matches the
stays by id, and probes every label with ``vaelab.evaluation.probe_table.probe_table`` (two
probes, the embedding beside the summary-statistics baseline of the Layer-2 window and the two
together, bootstrap intervals). It prints the table, and writes ``probe_table.csv`` (the long
table, one row per label, feature set, probe and metric) and ``probe_table.png`` (its figure)
beside the latents file, or in ``--out``. A bad input (a missing or unreadable file, no
``labels/`` group, stays that do not match) is one line naming the file and dataset, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .data.layer2 import Layer2Data, open_hdf5, read_layer2, read_strings, unreadable
from .errors import VaelabError
from .evaluation.probe_table import BOOTSTRAP_RESAMPLES, probe_table
from .evaluation.probes import TEST_FRACTION, summary_statistics
from .io import atomic_path

TABLE_FILE = "probe_table.csv"
PLOT_FILE = "probe_table.png"

__all__ = ["PLOT_FILE", "TABLE_FILE", "main", "probe_files", "read_embedding"]


def read_embedding(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(``mu`` as (N, d) float64, ``patient_ids`` as (N,) str) of a latents file, every problem one
    line naming the file and the dataset."""
    path = Path(path)
    try:
        with open_hdf5(path, ("mu", "patient_ids"), " (a latents file holds 'mu' and 'patient_ids')") as f:
            mu_ds = f["mu"]
            if mu_ds.dtype.kind not in "biuf" or mu_ds.ndim != 2:
                raise VaelabError(
                    f"{path}: dataset 'mu' must be numeric with shape (patients, latent_dim), not {mu_ds.dtype} {mu_ds.shape}"
                )
            mu = mu_ds[()].astype(np.float64)
            ids = read_strings(f["patient_ids"], path)
    except OSError as e:
        raise unreadable(path, e) from e
    if len(ids) != len(mu):
        raise VaelabError(f"{path}: dataset 'patient_ids' has {len(ids)} entries but 'mu' has {len(mu)} rows")
    if not np.isfinite(mu).all():
        row = int(np.argmax(~np.isfinite(mu).all(axis=1)))
        raise VaelabError(f"{path}: dataset 'mu' has NaN or infinite values, first for patient {ids[row]!r}")
    unique, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise VaelabError(f"{path}: dataset 'patient_ids' repeats {str(unique[np.argmax(counts > 1)])!r}")
    return mu, ids


def _matched(latents: Path, ids: np.ndarray, labels: Path, data: Layer2Data) -> Layer2Data:
    """The Layer-2 stays in the order of the latents' ids; each way they can fail to match is one line."""
    if not data.labels:
        raise VaelabError(f"{labels}: no 'labels' group (per-stay labels labels/<name>): nothing to probe")
    if len(ids) != data.n_patients:
        raise VaelabError(
            f"{latents}: dataset 'mu' has {len(ids)} patients but {labels} has {data.n_patients} (dataset 'patient_index'): "
            "not the same stays"
        )
    position = {str(p): i for i, p in enumerate(data.patient_ids)}
    missing = [str(p) for p in ids if str(p) not in position]
    if missing:
        raise VaelabError(f"{latents}: patient {missing[0]!r} (dataset 'patient_ids') is not in {labels} (dataset 'patient_index')")
    order = np.array([position[str(p)] for p in ids])
    return data if (order == np.arange(len(order))).all() else data.subset(order)


def probe_files(
    latents: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    threads: int | None = 1,
    plot: bool = True,
) -> tuple[pd.DataFrame, Path, Path | None]:
    """The probe table of the latents file's ``mu`` on the Layer-2 file's labels, with the
    summary-statistics baseline of its window; written to ``out`` (default: the latents'
    directory) as probe_table.csv and (``plot``) probe_table.png. Returns (table, csv, png)."""
    latents, labels = Path(latents), Path(labels)
    mu, ids = read_embedding(latents)
    data = _matched(latents, ids, labels, read_layer2(labels))
    out = Path(out) if out is not None else latents.parent
    table = probe_table(
        mu,
        data.labels,
        baseline=summary_statistics(data.values, data.masks),
        seed=seed,
        test_fraction=test_fraction,
        n_resamples=n_resamples,
        threads=threads,
    )
    csv = out / TABLE_FILE
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    png = None
    if plot:
        from .plots.probes import plot_probe_table  # matplotlib only when drawing

        png = plot_probe_table(table, out / PLOT_FILE)
    return table, csv, png


def format_table(table: pd.DataFrame) -> str:
    """The table for a terminal: one line per label, metric and feature set, one column per probe
    (``value [ci_low, ci_high]``, then ``vs summary`` with its paired interval where there is
    one), and the label's test stays."""
    if table.empty:
        return "(no label could be probed)"

    def cell(row) -> str:
        text = f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
        gain = getattr(row, "vs_summary", float("nan"))
        if np.isfinite(gain):
            text += f" vs summary {gain:+.3f} [{row.vs_summary_ci_low:+.3f}, {row.vs_summary_ci_high:+.3f}]"
        return text

    lines = {}
    for row in table.itertuples(index=False):
        key = (row.label, row.metric, row.features)
        line = lines.setdefault(key, {"label": row.label, "metric": row.metric, "features": row.features, "n_test": row.n_test})
        line[row.probe] = cell(row)
    wide = pd.DataFrame(list(lines.values()))
    probes = [p for p in ("linear", "gbt") if p in wide]
    wide = wide[["label", "metric", "features", *probes, "n_test"]].rename(
        columns={"linear": "linear (logistic/ridge)", "gbt": "boosted trees"}
    )
    return wide.to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.probe",
        description="Probe every per-stay label of a Layer-2 file from an embedding: logistic/ridge and boosted trees on the "
        "embedding, the summary-statistics baseline and both, with 95%% bootstrap intervals.",
    )
    parser.add_argument("latents", help="latents file (a run's vae_latents.h5: datasets mu, patient_ids)")
    parser.add_argument("--labels", required=True, help="Layer-2 file of the same stays, with a labels/ group")
    parser.add_argument("--out", help=f"directory for {TABLE_FILE} and {PLOT_FILE} (default: the latents file's directory)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient split, the trees and the bootstrap (default 0)")
    parser.add_argument("--test-fraction", type=float, default=TEST_FRACTION, help=f"share of stays held out (default {TEST_FRACTION})")
    parser.add_argument("--resamples", type=int, default=BOOTSTRAP_RESAMPLES, help=f"bootstrap resamples (default {BOOTSTRAP_RESAMPLES})")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads of the fits (default 1; 0 = every core)")
    parser.add_argument("--no-plot", action="store_true", help=f"do not draw {PLOT_FILE}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        table, csv, png = probe_files(
            args.latents,
            args.labels,
            args.out,
            seed=args.seed,
            test_fraction=args.test_fraction,
            n_resamples=args.resamples,
            threads=args.threads or None,
            plot=not args.no_plot,
        )
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 2
    print(format_table(table))
    for name, why in table.attrs.get("skipped", {}).items():
        print(f"skipped {name}: {why}")
    print(f"{csv}" + (f"\n{png}" if png else ""))
    print(f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
