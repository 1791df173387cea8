"""Compare runs in pandas: one row per run directory (or per Optuna trial), Pareto fronts, a CLI table.

Every run directory is self-describing (``.hydra/`` plus ``metrics.json``), so the table is built
from the directories alone, the way disentanglement_lib aggregates its results: the overridden
parameters become columns (typed from the composed config), scalar metrics become columns, dict
metrics are flattened with dots. A sweep's Optuna study is a second table that joins on
``sweep_trial == number``.

    python -m vaelab.results multirun/2024-05-01/12-00-00 outputs/ --csv runs.csv
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .atomic import atomic_path
from .errors import VaelabError

__all__ = [
    "DEFAULT_OBJECTIVES",
    "find_run_dirs",
    "join_runs_study",
    "load_kl_per_dim",
    "load_runs",
    "load_study",
    "load_sweep",
    "main",
    "pareto_mask",
]

METRICS_FILE = "metrics.json"
STUDY_FILE = "optuna.db"
# Config keys that identify a run even when nobody overrode them (group choices and the seed).
IDENTITY_KEYS = ("model", "data", "seed")
# metrics.json keys that are not results: the run's own path is the run_dir column.
NOT_METRICS = {"output_dir"}
DEFAULT_OBJECTIVES = ("kl:max", "latent_spread:max", "recon_mse:min")
SUMMARY_METRICS = ("kl", "active_units", "latent_dim", "latent_spread", "mi", "recon_mse", "epochs_trained", "train_seconds")
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ---------------------------------------------------------------------------------------------
# run directories


def find_run_dirs(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Every directory under ``paths`` (a path may itself be a run) holding a metrics.json, sorted.

    A path that does not exist is an error rather than an empty result: it is almost always a typo.
    """
    found: set[Path] = set()
    for path in _as_paths(paths):
        if not path.exists():
            raise VaelabError(f"{path}: no such file or directory")
        if path.is_file():
            if path.name == METRICS_FILE:
                found.add(path.parent)
            continue
        found.update(p.parent for p in path.rglob(METRICS_FILE) if p.is_file())
    return sorted(found)


def load_runs(path_or_paths: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: parameters, status, metrics, run_dir (+ sweep_dir, sweep_trial).

    Parameter columns are the union of every run's overridden keys (``.hydra/overrides.yaml``), plus
    ``model``, ``data`` and ``seed``; each run's value comes from its own composed config, so a run
    that kept a default shows the default rather than a gap. A run whose metrics.json or config is
    missing or unreadable is skipped with a warning: one broken run must not hide the others.
    """
    paths = _as_paths(path_or_paths)
    loaded = []
    for run_dir in find_run_dirs(paths):
        try:
            loaded.append(_read_run(run_dir))
        except _BadRun as exc:
            warnings.warn(f"{run_dir}: skipped ({exc})", stacklevel=2)
    if not loaded:
        raise VaelabError(f"no runs (directories with {METRICS_FILE} and .hydra/config.yaml) under {', '.join(map(str, paths))}")
    params, metrics = list(IDENTITY_KEYS), []
    for run in loaded:
        params += [k for k in run.overrides if k not in params]

    rows, has_trial = [], False
    for run in loaded:
        run_dir, config = run.run_dir, run.config
        row = {key: _param_value(key, config, run.choices, run.overrides.get(key)) for key in params}
        flat = _flatten({k: v for k, v in run.metrics.items() if k not in NOT_METRICS})
        row["status"] = flat.pop("status", None)
        for key, value in flat.items():
            if key in row:  # a metric named like a parameter: the parameter keeps the name
                continue
            row[key] = value
            if key not in metrics:
                metrics.append(key)
        row["run_dir"] = str(run_dir)
        row["sweep_dir"] = str(run_dir.parent) if run.multirun else None
        trial = config.get("sweep_trial")
        if trial is not None:  # set by vaelab's Optuna sweeper; null elsewhere
            has_trial = True
        row["sweep_trial"] = trial
        rows.append(row)

    columns = params + ["status"] + metrics + ["run_dir", "sweep_dir"] + (["sweep_trial"] if has_trial else [])
    df = pd.DataFrame(rows).reindex(columns=columns)
    if has_trial:
        df["sweep_trial"] = df["sweep_trial"].astype("Int64")
    df.attrs["parameters"] = params
    return df


def load_kl_per_dim(run_dirs_or_df) -> tuple[np.ndarray, list[str]]:
    """KL per latent dimension of each run as a (runs x max dims) matrix, NaN-padded, with row labels.

    Takes run directories or a load_runs table (its ``run_dir`` column, row for row), so the
    matrix lines up with the table for ``plots.plot_kl_heatmap``. A run without the list gets a NaN row.
    """
    if isinstance(run_dirs_or_df, pd.DataFrame):
        if "run_dir" not in run_dirs_or_df.columns:
            raise VaelabError("load_kl_per_dim needs a table with a run_dir column (from load_runs)")
        dirs = [Path(p) for p in run_dirs_or_df["run_dir"]]
    else:
        dirs = [Path(p) for p in ([run_dirs_or_df] if isinstance(run_dirs_or_df, (str, os.PathLike)) else run_dirs_or_df)]
    rows = []
    for run_dir in dirs:
        try:
            values = json.loads((run_dir / METRICS_FILE).read_text()).get("kl_per_dim") or []
            rows.append(np.asarray(values, dtype=float).reshape(-1))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            warnings.warn(f"{run_dir}: no kl_per_dim ({exc})", stacklevel=2)
            rows.append(np.zeros(0))
    width = max((len(r) for r in rows), default=0)
    matrix = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        matrix[i, : len(r)] = r
    return matrix, _short_labels(dirs)


class _BadRun(Exception):
    """A run directory that cannot be read; load_runs skips it with a warning."""


@dataclass
class _Run:
    run_dir: Path
    config: dict  # the composed config (.hydra/config.yaml)
    choices: dict  # config group -> choice (hydra.runtime.choices)
    overrides: dict  # dotted key -> Hydra Override, from .hydra/overrides.yaml
    metrics: dict  # metrics.json
    multirun: bool  # a job of a Hydra multirun (its parent is the sweep directory)


def _read_run(run_dir: Path) -> _Run:
    result = _read_json(run_dir / METRICS_FILE)
    hydra_dir = run_dir / ".hydra"
    config = _read_yaml(hydra_dir / "config.yaml", required=True)
    hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml", required=False)
    choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    if not isinstance(choices, dict):
        choices = {}
    for group in ("model", "data"):  # without hydra.yaml the schemas' ``name`` is the group choice
        node = config.get(group)
        if group not in choices and isinstance(node, dict) and "name" in node:
            choices[group] = node["name"]
    overrides_list = _read_yaml(hydra_dir / "overrides.yaml", required=False, default=[])
    if not isinstance(overrides_list, list):
        raise _BadRun(f"{hydra_dir / 'overrides.yaml'} is not a list of overrides")
    multirun = (hydra_cfg.get("hydra") or {}).get("mode") == "MULTIRUN" or (run_dir.parent / "multirun.yaml").is_file()
    return _Run(run_dir, config, choices, _parse_overrides(overrides_list), result, multirun)


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except OSError as exc:
        raise _BadRun(f"cannot read {path.name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _BadRun(f"corrupt {path.name}: {exc}") from None
    if not isinstance(content, dict):
        raise _BadRun(f"corrupt {path.name}: not a JSON object")
    return content


def _read_yaml(path: Path, required: bool, default=None):
    if not path.exists():
        if required:
            raise _BadRun(f"missing {path.parent.name}/{path.name}")
        return {} if default is None else default
    try:
        content = yaml.load(path.read_text(), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise _BadRun(f"corrupt {path.parent.name}/{path.name}: {str(exc).splitlines()[0]}") from None
    if content is None:
        return {} if default is None else default
    if default is None and not isinstance(content, dict):
        raise _BadRun(f"corrupt {path.parent.name}/{path.name}: not a mapping")
    return content


def _parse_overrides(lines: list) -> dict:
    """{dotted key: Override} for the run's task overrides, ``+``/``++``/``~`` dropped, hydra.* left out."""
    parser = _override_parser()
    out = {}
    for line in lines:
        try:
            override = parser.parse_override(str(line))
        except Exception as exc:  # Hydra's grammar errors have no common base class
            raise _BadRun(f"unparsable override {line!r}: {str(exc).splitlines()[0]}") from None
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")) or key == "sweep_trial":
            continue
        out[key] = override
    return out


@functools.lru_cache(maxsize=1)
def _override_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _param_value(key: str, config: dict, choices: dict, override):
    """A parameter's value for one run: group choice, else the config's scalar, else the override's text."""
    if key in choices:
        return choices[key]
    found, value = _lookup(config, key)
    if found and _is_scalar(value):
        return value
    if override is not None:
        if override.is_delete():
            return None
        parsed = override.value()
        return parsed if _is_scalar(parsed) else override.get_value_element_as_str()
    if found and isinstance(value, list):  # same spelling as an override would have: [HR,SBP]
        return "[" + ",".join(map(str, value)) + "]"
    return None


def _lookup(config: dict, dotted: str) -> tuple[bool, object]:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flatten(d: dict, prefix: str = "") -> dict:
    """Scalars as they are, dicts as ``outer.inner`` keys; lists are left out (see load_kl_per_dim)."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif _is_scalar(value):
            out[name] = value
    return out


def _short_labels(dirs: Sequence[Path]) -> list[str]:
    """Run directories relative to their common parent: '0', '1' for a sweep; the name for one run."""
    if len(dirs) < 2:
        return [d.name for d in dirs]
    try:
        common = Path(os.path.commonpath([str(d.resolve()) for d in dirs]))
        return [str(d.resolve().relative_to(common)) or d.name for d in dirs]
    except ValueError:
        return [str(d) for d in dirs]


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


# ---------------------------------------------------------------------------------------------
# Optuna studies


def load_study(storage: str, study_name: str | None = None) -> pd.DataFrame:
    """One row per trial of an Optuna study: number, state, params, objective values, timing, user attrs.

    Objective columns carry the names the sweep recorded in the study's ``objectives`` user
    attribute (``kl``, ``recon_mse``, ...), else ``value_0``, ``value_1``, ... Any storage URL works;
    a SQLite file that does not exist is an error here, not a fresh empty study.
    """
    import optuna

    storage = str(storage)
    if "://" not in storage:
        raise VaelabError(f"{storage}: not a storage URL (expected e.g. sqlite:///path/optuna.db)")
    if storage.startswith("sqlite:///"):
        path = Path(storage[len("sqlite:///"):])
        if not path.is_file():
            raise VaelabError(f"{storage}: no such SQLite file {path}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        rdb = optuna.storages.RDBStorage(storage)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage=rdb)]
        if study_name is None:
            if len(names) != 1:
                raise VaelabError(f"{storage}: holds {len(names)} studies {names}; choose one with study_name (--study)")
            study_name = names[0]
        elif study_name not in names:
            raise VaelabError(f"{storage}: no study {study_name!r}; studies: {names}")
        study = optuna.load_study(study_name=study_name, storage=rdb)
        trials = study.get_trials(deepcopy=False)
        n_objectives = len(study.directions)
        directions = [d.name.lower() for d in study.directions]
        names_attr = study.user_attrs.get("objectives")
    except VaelabError:
        raise
    except Exception as exc:  # SQLAlchemy/driver/Optuna errors: a bad URL, an unreachable server, not an Optuna DB
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VaelabError(f"{storage}: cannot read Optuna storage ({type(exc).__name__}: {message})") from None
    finally:
        engine = getattr(locals().get("rdb"), "engine", None)
        if engine is not None:
            engine.dispose()  # release the database file / connection now, not at garbage collection

    if isinstance(names_attr, list) and len(names_attr) == n_objectives and all(isinstance(n, str) for n in names_attr):
        objectives = list(names_attr)
    else:
        objectives = [f"value_{i}" for i in range(n_objectives)]
    params: list[str] = []
    for trial in trials:
        params += [p for p in trial.params if p not in params]
    rows = []
    for trial in trials:
        row = {"number": trial.number, "state": trial.state.name}
        row.update({p: trial.params.get(p) for p in params})
        values = trial.values or [None] * n_objectives
        row.update(zip(objectives, values))
        row["datetime_start"] = trial.datetime_start
        row["duration_s"] = trial.duration.total_seconds() if trial.duration is not None else None
        for key, value in _flatten(trial.user_attrs).items():
            row[key if key not in row else f"user_attrs.{key}"] = value
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["number", "state", *params, *objectives, "datetime_start", "duration_s"])
    for name in objectives:
        df[name] = pd.to_numeric(df[name], errors="coerce")
    df.attrs.update(parameters=params, objectives=objectives, directions=directions, study_name=study_name)
    return df


def load_sweep(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """A sweep's runs joined with its Optuna trials (``<sweep_dir>/optuna.db``) on sweep_trial == number.

    Without a study (a plain Hydra multirun) or without sweep_trial in the runs, the runs alone.
    The join is outer: a trial that failed before writing metrics.json still gets a row. Study
    columns named like run columns (the objective values) get the suffix ``_study``.
    """
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir)
    if not (sweep_dir / STUDY_FILE).is_file() or "sweep_trial" not in runs.columns:
        return runs
    return join_runs_study(runs, load_study(f"sqlite:///{sweep_dir.resolve() / STUDY_FILE}"))


def join_runs_study(runs: pd.DataFrame, study: pd.DataFrame) -> pd.DataFrame:
    """Outer join of a load_runs table with a load_study table on sweep_trial == number."""
    if "sweep_trial" not in runs.columns:
        raise VaelabError("the runs have no sweep_trial (not from vaelab's Optuna sweeper), so they cannot be joined with a study")
    params = runs.attrs.get("parameters", [])
    study_params = study.attrs.get("parameters", [])
    # the runs' parameter values come from their configs; the study's copies would only repeat them
    study_side = study.drop(columns=[c for c in study_params if c in params])
    merged = runs.merge(study_side, how="outer", left_on="sweep_trial", right_on="number", suffixes=("", "_study"))
    merged = merged.sort_values(["number", "run_dir"], na_position="last", kind="stable").reset_index(drop=True)
    merged.attrs.update(study.attrs)
    merged.attrs["parameters"] = params + [p for p in study_params if p not in params]
    return merged


# ---------------------------------------------------------------------------------------------
# Pareto front


def pareto_mask(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> np.ndarray:
    """True for the non-dominated rows among the usable ones (status ok / state COMPLETE, finite objectives).

    A row dominates another when it is at least as good on every objective and better on one;
    equal rows do not dominate each other, so ties stay on the front together.
    """
    objectives, directions = list(objectives), [str(d) for d in directions]
    if not objectives:
        raise VaelabError("pareto_mask needs at least one objective")
    if len(directions) != len(objectives):
        raise VaelabError(f"pareto_mask: {len(objectives)} objectives but {len(directions)} directions")
    bad = [d for d in directions if d.lower() not in _DIRECTIONS]
    if bad:
        raise VaelabError(f"pareto_mask: direction {bad[0]!r} is neither 'maximize' nor 'minimize'")
    missing = [c for c in objectives if c not in df.columns]
    if missing:
        raise VaelabError(f"pareto_mask: objective {missing[0]!r} is not a column (columns: {list(df.columns)})")

    signs = np.array([-1.0 if _DIRECTIONS[d.lower()] == "maximize" else 1.0 for d in directions])
    points = np.column_stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in objectives]) * signs
    usable = _usable_rows(df) & np.isfinite(points).all(axis=1)
    mask = np.zeros(len(df), dtype=bool)
    candidates = points[usable]  # everything is minimised from here on
    if len(candidates):
        no_worse = (candidates[:, None, :] >= candidates[None, :, :]).all(axis=2)  # [i, j]: j is no worse than i
        better = (candidates[:, None, :] > candidates[None, :, :]).any(axis=2)  # [i, j]: j beats i somewhere
        mask[np.flatnonzero(usable)] = ~(no_worse & better).any(axis=1)
    return mask


def _usable_rows(df: pd.DataFrame) -> np.ndarray:
    """status ok where a run's status is known; else state COMPLETE where a trial's state is known."""
    n = len(df)
    status = df["status"].to_numpy(dtype=object) if "status" in df.columns else np.full(n, None, dtype=object)
    state = df["state"].to_numpy(dtype=object) if "state" in df.columns else np.full(n, None, dtype=object)
    out = np.ones(n, dtype=bool)
    for i in range(n):
        if _known(status[i]):
            out[i] = status[i] == "ok"
        elif _known(state[i]):
            out[i] = state[i] == "COMPLETE"
        elif "status" in df.columns or "state" in df.columns:
            out[i] = False
    return out


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA


# ---------------------------------------------------------------------------------------------
# command line


def parse_objectives(specs: Sequence[str]) -> tuple[list[str], list[str]]:
    """``["kl:max", "recon_mse:min"]`` -> (["kl", "recon_mse"], ["maximize", "minimize"])."""
    names, directions = [], []
    for spec in specs:
        name, sep, direction = str(spec).rpartition(":")
        if not sep or not name or direction.lower() not in _DIRECTIONS:
            raise VaelabError(f"--objectives: {spec!r} is not NAME:max or NAME:min")
        names.append(name)
        directions.append(_DIRECTIONS[direction.lower()])
    return names, directions


def build_table(args: argparse.Namespace) -> pd.DataFrame:
    """The full table the CLI shows: runs, a study, or both joined; with a boolean ``pareto`` column."""
    if args.storage:
        study = load_study(args.storage, args.study)
        df = join_runs_study(load_runs(args.paths), study) if args.paths else study
    elif len(args.paths) == 1 and (Path(args.paths[0]) / STUDY_FILE).is_file():
        df = load_sweep(args.paths[0])
    elif args.paths:
        df = load_runs(args.paths)
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


def default_columns(df: pd.DataFrame, objectives: Sequence[str] = ()) -> list[str]:
    """What fits a terminal: varying parameters, status, the collapse summary, factor_r2.*,
    recon_band_r2.* (which time scales are reconstructed) and probe_*.

    Parameters equal in every row say nothing about the comparison; constant_parameters lists them
    once under the table instead.
    """
    params = [p for p in df.attrs.get("parameters", []) if p in df.columns]
    constant = set(constant_parameters(df))
    wanted = ["number", "state"] if "status" not in df.columns else []
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
    """pandas to_string with 4 significant digits and ``*`` marking the Pareto front."""
    shown = df[list(columns)].copy()
    shown.insert(0, "pareto", np.where(df["pareto"].to_numpy(dtype=bool), "*", ""))
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")


def _fmt(value) -> str:
    return "-" if not _known(value) else f"{value:.4g}" if isinstance(value, float) else str(value)


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
    parser.add_argument("--objectives", nargs="+", default=list(DEFAULT_OBJECTIVES), metavar="NAME:max|min",
                        help="Pareto objectives (default: %(default)s)")
    parser.add_argument("--columns", help="comma-separated columns to show (default: parameters, status, summary metrics)")
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
        constant = constant_parameters(df)
        if constant and not args.columns:
            print("same in every row: " + " ".join(f"{k}={_fmt(v)}" for k, v in constant.items()))
        if args.csv:
            with atomic_path(args.csv) as tmp:
                df.to_csv(tmp, index=False)
            print(f"wrote {len(df)} rows x {df.shape[1]} columns to {args.csv}", file=sys.stderr)
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
