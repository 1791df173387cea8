"""Pareto fronts of a run or trial table: which rows no other row beats on every objective."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import VaelabError

__all__ = ["pareto_mask"]

# Accepted spellings of an objective's direction -> Optuna's name for it.
DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


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
    bad = [d for d in directions if d.lower() not in DIRECTIONS]
    if bad:
        raise VaelabError(f"pareto_mask: direction {bad[0]!r} is neither 'maximize' nor 'minimize'")
    missing = [c for c in objectives if c not in df.columns]
    if missing:
        raise VaelabError(f"pareto_mask: objective {missing[0]!r} is not a column (columns: {list(df.columns)})")

    signs = np.array([-1.0 if DIRECTIONS[d.lower()] == "maximize" else 1.0 for d in directions])
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
        if known(status[i]):
            out[i] = status[i] == "ok"
        elif known(state[i]):
            out[i] = state[i] == "COMPLETE"
        elif "status" in df.columns or "state" in df.columns:
            out[i] = False
    return out


def known(value) -> bool:
    """False for a missing cell: None, NaN or pd.NA."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA
