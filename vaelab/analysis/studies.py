"""Optuna studies as pandas tables, and a sweep's runs joined with its study's trials.

A sweep's study is a second table next to its runs; it joins on ``sweep_trial == number``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import VaelabError
from ..study_storage import JOURNAL_SCHEME, make_storage
from .runs import flat_scalars, load_runs

__all__ = ["join_runs_study", "load_study", "load_sweep"]

STUDY_FILE = "optuna.db"
EPOCHS_STUDY_SUFFIX = ":epochs"  # a pruned sweep's companion study of per-epoch losses (sweeps/pruning.py), not a sweep


def load_study(storage: str, study_name: str | None = None) -> pd.DataFrame:
    """One row per trial of an Optuna study: number, state, params, objective values, timing, user attrs.

    Objective columns carry the names the sweep recorded in the study's ``objectives`` user
    attribute (``kl``, ``recon_mse``, ...), else ``value_0``, ``value_1``, ... Any storage URL works;
    a SQLite file that does not exist is an error here, not a fresh empty study.
    """
    import optuna

    storage = str(storage)
    if "://" not in storage:
        raise VaelabError(f"{storage}: not a storage URL (expected e.g. sqlite:///path/optuna.db or journal:///path/study.log)")
    for scheme in ("sqlite:///", JOURNAL_SCHEME):
        path = Path(storage[len(scheme) :])
        if storage.startswith(scheme) and not path.is_file():
            raise VaelabError(f"{storage}: no such file {path}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        rdb = make_storage(storage, heartbeat_seconds=None)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage=rdb) if not s.study_name.endswith(EPOCHS_STUDY_SUFFIX)]
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
        for key, value in flat_scalars(trial.user_attrs).items():
            row[key if key not in row else f"user_attrs.{key}"] = value
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["number", "state", *params, *objectives, "datetime_start", "duration_s"])
    for name in objectives:
        df[name] = pd.to_numeric(df[name], errors="coerce")
    df.attrs.update(parameters=params, objectives=objectives, directions=directions, study_name=study_name)
    return df


def load_sweep(sweep_dir: str | os.PathLike, failed: bool = False) -> pd.DataFrame:
    """A sweep's runs joined with its Optuna trials (``<sweep_dir>/optuna.db``) on sweep_trial == number.

    Without a study (a plain Hydra multirun) or without sweep_trial in the runs, the runs alone.
    The join is outer: a failed trial keeps its study row (state FAIL) even where its run is
    left out (``failed`` as in load_runs). Study
    columns named like run columns (the objective values) get the suffix ``_study``.
    """
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir, failed=failed)
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
