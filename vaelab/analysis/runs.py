"""Run directories as a pandas table, one row per run.

Every run directory is self-describing (``.hydra/`` plus ``metrics.json``), so the table is built
from the directories alone: the overridden parameters become columns (typed from the composed
config), scalar metrics become columns, dict metrics are flattened with dots.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import VaelabError
from ..io import METRICS_FILE, flatten

__all__ = ["find_run_dirs", "load_kl_per_dim", "load_runs"]

# Config keys that identify a run even when nobody overrode them (group choices and the seed).
IDENTITY_KEYS = ("model", "data", "seed")
# metrics.json keys that are not results: the run's own path is the run_dir column.
NOT_METRICS = {"output_dir"}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def load_runs(path_or_paths: str | os.PathLike | Iterable[str | os.PathLike], failed: bool = False) -> pd.DataFrame:
    """One row per run: parameters, status, metrics, run (a short id: the run directory relative to
    the runs' common parent, as the KL heatmap labels it), run_dir (+ sweep_dir, sweep_trial).

    Runs that failed on their input (``status: failed``: no results, only the error) are left out
    unless ``failed``; ``df.attrs["failed_hidden"]`` counts them. Diverged and interrupted runs are
    results and always listed.

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
    hidden = 0 if failed else sum(run.metrics.get("status") == "failed" for run in loaded)
    if hidden == len(loaded):
        raise VaelabError(f"all {hidden} runs under {', '.join(map(str, paths))} failed; show them with failed=True (--failed)")
    if hidden:
        loaded = [run for run in loaded if run.metrics.get("status") != "failed"]
    params, metrics = list(IDENTITY_KEYS), []
    for run in loaded:
        params += [k for k in run.overrides if k not in params]

    rows, has_trial = [], False
    for run, short in zip(loaded, _short_labels([run.run_dir for run in loaded])):
        run_dir, config = run.run_dir, run.config
        row = {key: _param_value(key, config, run.choices, run.overrides.get(key)) for key in params}
        flat = flat_scalars({k: v for k, v in run.metrics.items() if k not in NOT_METRICS})
        row["status"] = flat.pop("status", None)
        for key, value in flat.items():
            if key in row:  # a metric named like a parameter: the parameter keeps the name
                continue
            row[key] = value
            if key not in metrics:
                metrics.append(key)
        row["run"] = short
        row["run_dir"] = str(run_dir)
        row["sweep_dir"] = str(run_dir.parent) if run.multirun else None
        trial = config.get("sweep_trial")
        if trial is not None:  # set by vaelab's Optuna sweeper; null elsewhere
            has_trial = True
        row["sweep_trial"] = trial
        rows.append(row)

    columns = params + ["status"] + metrics + ["run", "run_dir", "sweep_dir"] + (["sweep_trial"] if has_trial else [])
    df = pd.DataFrame(rows).reindex(columns=columns)
    if has_trial:
        df["sweep_trial"] = df["sweep_trial"].astype("Int64")
    df.attrs["parameters"] = params
    df.attrs["failed_hidden"] = hidden
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


def flat_scalars(d: dict) -> dict:
    """Scalars as they are, dicts as ``outer.inner`` keys; lists are left out (see load_kl_per_dim)."""
    return {name: value for name, value in flatten(d).items() if _is_scalar(value)}


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
