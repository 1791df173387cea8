"""How a run is scored: its objectives from its metrics, by name, with constraints and penalties.

The task function returns these values to the Optuna sweeper. A run that failed or diverged has
no objectives: ``objectives`` raises TrialFailed, and vaelab's sweeper records the trial as FAIL
while the sweep goes on (the plugin itself would crash on a NaN).
"""

from __future__ import annotations

import math

# What a sweep optimizes unless told otherwise: the Pareto front of an informative latent (true KL
# and spread up) that still reconstructs (held-out MSE down). The sweep config, the report and the
# results table all start from these.
DEFAULT_OBJECTIVES = ("kl", "latent_spread", "recon_mse")
DEFAULT_DIRECTIONS = ("maximize", "maximize", "minimize")

# Metrics scored on the probes' test stays (their first name part; ``probe_table.*`` is every cell of
# the label table). Those stays judge the chosen model once, so no selection reads them: sweeps
# select on ``probe_val_auroc``, the same probe on a validation part of the training stays.
TEST_STAY_METRICS = ("probe_auroc", "probe_auprc", "probe_baseline_auroc", "probe_baseline_auprc", "probe_table")
VALIDATION_PROBE_METRIC = "probe_val_auroc"


def reads_test_stays(name: str) -> bool:
    """Whether the metric ``name`` (dotted for nested ones) is scored on the probes' test stays."""
    return name.split(".", 1)[0] in TEST_STAY_METRICS


class TrialFailed(RuntimeError):
    """The run has no usable objectives (failed, diverged, or a metric missing / not finite)."""


def metric_value(metrics: dict, name: str):
    """A metric by name; a dotted name reaches into nested metrics (``factor_r2.episode_rate``),
    the same names the results tables give their flattened columns. None when absent."""
    if name in metrics:
        return metrics[name]
    value = metrics
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def objectives(metrics: dict, sweep) -> list[float]:
    """Objective values in ``sweep.objectives`` order (``sweep``: a ``sweeps.config.SweepConfig``).

    A run breaking a constraint (``max_metrics`` / ``min_metrics``) keeps a finite record: each
    objective becomes ``-penalty`` (maximize) or ``+penalty`` (minimize), so the run is
    dominated by every feasible run and never joins the Pareto front.
    """
    if metrics.get("status") != "ok":
        raise TrialFailed(f"run {metrics.get('status', 'failed')}: {metrics.get('error', 'no error recorded')}")
    values = []
    for name in sweep.objectives:
        value = metric_value(metrics, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise TrialFailed(f"objective {name!r} is {value!r} in metrics.json (not a finite number)")
        values.append(float(value))
    if violated_constraints(metrics, sweep):
        return [-sweep.penalty if d == "maximize" else sweep.penalty for d in sweep.directions]
    return values


def violated_constraints(metrics: dict, sweep) -> list[str]:
    """Human-readable list of the constraints a run breaks (empty when feasible)."""
    broken = []
    for name, bound in sweep.max_metrics.items():
        value = metric_value(metrics, name)
        if value is None or not value <= bound:
            broken.append(f"{name}={value} > {bound}")
    for name, bound in sweep.min_metrics.items():
        value = metric_value(metrics, name)
        if value is None or not value >= bound:
            broken.append(f"{name}={value} < {bound}")
    return broken
