"""Comparing runs in pandas: run directories and Optuna studies as tables, Pareto fronts, the CLI table."""

from .pareto import pareto_mask
from .runs import find_run_dirs, load_kl_per_dim, load_runs
from .studies import join_runs_study, load_study, load_sweep
from .tables import (
    DEFAULT_OBJECTIVE_SPECS,
    build_table,
    constant_parameters,
    default_columns,
    format_table,
    parse_objectives,
)

__all__ = [
    "DEFAULT_OBJECTIVE_SPECS",
    "build_table",
    "constant_parameters",
    "default_columns",
    "find_run_dirs",
    "format_table",
    "join_runs_study",
    "load_kl_per_dim",
    "load_runs",
    "load_study",
    "load_sweep",
    "pareto_mask",
    "parse_objectives",
]
