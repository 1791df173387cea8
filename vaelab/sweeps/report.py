"""The sweep report, written when a sweep ends: the table, the Pareto front, each parameter vs each
objective and KL per dimension across runs — read back from the run directories and the study,
never from in-process state. Also ``python -m vaelab.report SWEEP_DIR`` for a sweep in progress."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from .. import plots
from ..analysis.pareto import pareto_mask
from ..analysis.runs import load_kl_per_dim
from ..analysis.studies import load_sweep
from ..analysis.tables import beta_inactive_note, constant_parameters, default_columns, format_table
from ..errors import VaelabError
from ..evaluation.objectives import DEFAULT_DIRECTIONS, DEFAULT_OBJECTIVES
from ..io import atomic_path

log = logging.getLogger(__name__)

REPORT_DIR = "report"


def write_sweep_report(sweep_dir: str | Path) -> Path:
    """Write ``<sweep_dir>/report/``: table.csv, table.txt (with a line naming the trials whose beta had
    no effect), pareto.png, params_vs_objectives.png, kl_heatmap.png."""
    sweep_dir = Path(sweep_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = load_sweep(sweep_dir, failed=True)  # the report accounts for every trial, failed ones too
    objectives = list(df.attrs.get("objectives") or DEFAULT_OBJECTIVES)
    directions = list(df.attrs.get("directions") or DEFAULT_DIRECTIONS)
    objectives, directions = zip(*[(o, d) for o, d in zip(objectives, directions) if o in df.columns]) or ((), ())
    df["pareto"] = pareto_mask(df, objectives, directions) if objectives else False
    if objectives:
        df = df.sort_values(list(objectives[:1]), ascending=directions[0] != "maximize", na_position="last")
    out = sweep_dir / REPORT_DIR
    with atomic_path(out / "table.csv") as tmp:
        df.to_csv(tmp, index=False)
    text = format_table(df, default_columns(df, objectives))
    constant = constant_parameters(df)
    if constant:
        text += "\nsame in every row: " + ", ".join(f"{k}={v}" for k, v in constant.items())
    note = beta_inactive_note(df)
    if note:
        text += "\n" + note
        log.warning(note)
    with atomic_path(out / "table.txt") as tmp:
        tmp.write_text(text + "\n")
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if len(objectives) >= 2 and len(ok):
        plots.plot_pareto(
            ok,
            objectives[0],
            objectives[1],
            out / "pareto.png",
            pareto_mask=ok["pareto"].to_numpy(bool),
            color=objectives[2] if len(objectives) > 2 else None,
        )
    params = [p for p in df.attrs.get("parameters", []) if p in ok.columns and ok[p].nunique() > 1]
    if params and objectives and len(ok):
        plots.plot_param_vs_objective(
            ok, params, list(objectives), out / "params_vs_objectives.png", pareto_mask=ok["pareto"].to_numpy(bool)
        )
    if len(ok):
        matrix, labels = load_kl_per_dim(ok)
        plots.plot_kl_heatmap(matrix, labels, out / "kl_heatmap.png")
    log.info("Sweep report: %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaelab.report", description="(Re)write a sweep's report.")
    parser.add_argument("sweep_dir")
    args = parser.parse_args(argv)
    try:
        out = write_sweep_report(args.sweep_dir)
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        return 2
    print((out / "table.txt").read_text(), end="")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
