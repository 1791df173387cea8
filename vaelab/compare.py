"""``python -m vaelab.compare NAME=PATH ...``: several embeddings' probe tables side by side, over seeds.

Each ``NAME=PATH[,PATH...]`` is one embedding (a model, a peer) and its runs, one per seed: a run
directory (its ``metrics.json`` holds the probe table, or a ``probe_table.csv`` beside it), a
``probe_table.csv`` written by ``python -m vaelab.probe``, or a glob of either
(``default=multirun/physionet2019/multiscale_*``). The result is one row per embedding, feature
set and probe, one column per label with its headline metric (AUROC for binary labels, R² for
continuous ones) as ``mean ± sd`` over the runs; the summary-statistics rows (the same data and
split in every run) come once, from all runs together. Every table must come from the same
stays and split; what is checked is that each label was probed on the same numbers of training and
test stays in every table (another cohort or split shows there), else one line naming the file.

It prints the table and writes ``--markdown`` (the README form) and ``--csv`` (mean, sd and runs
per cell) when asked. A missing file or a table without a probe table is one line, exit 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import VaelabError
from .evaluation.probe_table import COLUMNS, table_from_metrics
from .io import METRICS_FILE, atomic_path
from .probe import TABLE_FILE

HEADLINE = {"binary": "auroc", "continuous": "r2"}  # the metric a label's column shows
ROW_ORDER = ("embedding", "embedding+summary")  # an embedding's own rows, then what it adds to the baseline
BASELINE = "summary statistics"  # the name of the rows of the summary-statistics features alone


def read_probe_table(path: str | Path) -> pd.DataFrame:
    """The long probe table (columns ``COLUMNS``) of a run directory or a probe_table.csv."""
    path = Path(path)
    if path.is_dir():
        csv, metrics = path / TABLE_FILE, path / METRICS_FILE
        if csv.is_file():
            path = csv
        elif metrics.is_file():
            try:
                table = table_from_metrics(json.loads(metrics.read_text()))
            except (ValueError, KeyError, TypeError) as e:
                raise VaelabError(f"{metrics}: not a run's metrics file ({e})") from e
            if table.empty:
                raise VaelabError(f"{metrics}: no probe table (a run on data without labels/, or eval.probe_table=false)")
            return table
        else:
            raise VaelabError(f"{path}: neither {TABLE_FILE} nor {METRICS_FILE} is in this directory")
    if not path.is_file():
        raise VaelabError(f"{path}: no such file or directory")
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError) as e:
        raise VaelabError(f"{path}: not a probe table ({e})") from e
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise VaelabError(f"{path}: not a probe table (no column {missing[0]!r})")
    return table


def expand(spec: str) -> tuple[str, list[str]]:
    """``NAME=PATH[,PATH...]`` (globs expanded, sorted) -> (name, paths)."""
    name, sep, paths = spec.partition("=")
    if not sep or not name or not paths:
        raise VaelabError(f"{spec!r}: expected NAME=PATH[,PATH...], e.g. default=multirun/physionet2019/multiscale_*")
    found = []
    for pattern in paths.split(","):
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise VaelabError(f"{name}: {pattern!r} matches nothing")
        found += matches
    return name, found


def _check_same_split(tables: dict[str, pd.DataFrame]) -> None:
    """Every table's labels were probed on the same number of training and test stays."""
    reference_path, reference = next(iter(tables.items()))
    sizes = reference.groupby("label")[["n_train", "n_test"]].first()
    for path, table in tables.items():
        other = table.groupby("label")[["n_train", "n_test"]].first()
        common = sizes.index.intersection(other.index)
        differs = [label for label in common if tuple(sizes.loc[label]) != tuple(other.loc[label])]
        if differs:
            label = differs[0]
            raise VaelabError(
                f"{path}: label {label!r} was probed on {tuple(other.loc[label])} (train, test) stays but "
                f"{reference_path} on {tuple(sizes.loc[label])}: not the same stays or split"
            )


def compare(embeddings: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """Long comparison: one row per (embedding, features, probe, label) with ``mean``, ``sd``
    (sample sd; NaN for one run), ``runs`` and ``metric``. The summary-statistics rows are
    named :data:`BASELINE` and pooled over every run."""
    parts = []
    for name, tables in embeddings.items():
        for run, table in enumerate(tables):
            headline = table[table.metric == table.kind.map(HEADLINE)]
            own = headline[headline.features.isin(ROW_ORDER)].assign(embedding=name, run=f"{name}/{run}")
            base = headline[headline.features == "summary"].assign(embedding=BASELINE, run=f"{name}/{run}")
            parts += [own, base]
    rows = pd.concat(parts, ignore_index=True)
    grouped = rows.groupby(["embedding", "features", "probe", "label", "metric"], sort=False)["value"]
    out = grouped.agg(mean="mean", sd="std", runs="count").reset_index()
    order = {name: i for i, name in enumerate([BASELINE, *embeddings])}
    out["_order"] = out.embedding.map(order)
    return out.sort_values(["_order", "features", "probe"], kind="stable").drop(columns="_order").reset_index(drop=True)


def wide(comparison: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """One row per embedding, feature set and probe; one ``mean ± sd`` column per label."""

    def cell(row) -> str:
        if row.runs > 1 and np.isfinite(row.sd):
            return f"{row['mean']:.{decimals}f} ± {row.sd:.{decimals}f}"
        return f"{row['mean']:.{decimals}f}"

    frame = comparison.assign(cell=comparison.apply(cell, axis=1), column=comparison.label + " (" + comparison.metric + ")")
    added = np.where(frame.features == "embedding+summary", " + " + BASELINE, "")
    frame["row"] = frame.embedding + added + " · " + frame.probe
    table = frame.pivot_table(index="row", columns="column", values="cell", aggfunc="first", sort=False)
    runs = frame.groupby("row", sort=False)["runs"].max()
    table.insert(len(table.columns), "runs", runs)
    table.index.name = "features · probe"
    return table


def markdown(table: pd.DataFrame) -> str:
    """The wide table as a markdown table (its index the first column)."""
    header = [table.index.name or "", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(index), *map(str, row)]) + " |" for index, row in zip(table.index, table.itertuples(index=False))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.compare",
        description="Several embeddings' probe tables side by side: mean ± sd over each embedding's runs (seeds).",
    )
    parser.add_argument(
        "embeddings", nargs="+", metavar="NAME=PATH[,PATH...]", help="an embedding and its runs (run dirs, probe_table.csv, globs)"
    )
    parser.add_argument("--markdown", help="write the table as markdown here")
    parser.add_argument("--csv", help="write the long comparison (mean, sd, runs per cell) here")
    args = parser.parse_args(argv)
    try:
        tables: dict[str, dict[str, pd.DataFrame]] = {}
        for spec in args.embeddings:
            name, paths = expand(spec)
            if name in tables:
                raise VaelabError(f"{name!r} is named twice")
            tables[name] = {path: read_probe_table(path) for path in paths}
        _check_same_split({path: table for runs in tables.values() for path, table in runs.items()})
        comparison = compare({name: list(runs.values()) for name, runs in tables.items()})
    except VaelabError as e:
        print(f"vaelab.compare: {e}", file=sys.stderr)
        return 2
    table = wide(comparison)
    print(table.to_string())
    if args.markdown:
        with atomic_path(Path(args.markdown)) as tmp:
            Path(tmp).write_text(markdown(table))
    if args.csv:
        with atomic_path(Path(args.csv)) as tmp:
            comparison.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
