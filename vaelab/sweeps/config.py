"""A sweep's settings (Hydra: ``sweep``): what it scores, and how its workers stay accountable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import check, check_finite
from ..evaluation.objectives import DEFAULT_DIRECTIONS, DEFAULT_OBJECTIVES, VALIDATION_PROBE_METRIC, reads_test_stays
from .collapse_rule import CollapseRule


@dataclass
class SweepConfig:
    """How a sweep scores runs (read by the task function and vaelab's Optuna sweeper).

    Objectives are metrics.json keys with directions; a dotted name reaches a nested metric
    (``factor_r2.episode_rate``), as in the results tables' columns. ``max_metrics`` / ``min_metrics`` are
    constraints: a run outside them is not a failure, but its objectives are replaced by the
    worst-possible finite ``penalty`` so it never joins the Pareto front. The default caps the true
    KL per latent dimension: a plain autoencoder (beta -> 0) buys a huge KL with vanishing posterior
    variance, and must not win on "KL" while reconstruction is an objective too.
    """

    objectives: list[str] = field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    directions: list[str] = field(default_factory=lambda: list(DEFAULT_DIRECTIONS))
    max_metrics: dict[str, float] = field(default_factory=lambda: {"kl_per_latent_dim": 5.0})
    min_metrics: dict[str, float] = field(default_factory=dict)
    penalty: float = 1.0e6
    heartbeat_seconds: int = 10  # a running trial's sweep process proves it is alive this often
    stale_after_seconds: int = 60  # a running trial silent this long belongs to a killed process: FAIL
    report: bool = True  # write the sweep report (table + plots) when the sweep ends
    # Stop hopeless trials early (vaelab/sweeps/pruning.py): none, collapse (vaelab's rule), or an
    # Optuna pruner (median, percentile, successive_halving, hyperband, wilcoxon, threshold) with its options.
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)  # Optuna's; new keys need +: +sweep.pruner_options.n_warmup_steps=5
    collapse: CollapseRule = field(default_factory=CollapseRule)  # the collapse rule's settings

    def __post_init__(self) -> None:
        if isinstance(self.collapse, dict):  # built from a plain mapping (a config container)
            self.collapse = CollapseRule(**self.collapse)
        check(len(self.objectives) >= 1, "sweep.objectives", "name at least one metric")
        check(
            len(self.objectives) == len(self.directions), "sweep.directions", f"needs one direction per objective ({len(self.objectives)})"
        )
        for d in self.directions:
            check(d in ("maximize", "minimize"), "sweep.directions", f"must be maximize or minimize, got {d!r}")
        for key, names in (
            ("sweep.objectives", self.objectives),
            ("sweep.max_metrics", self.max_metrics),
            ("sweep.min_metrics", self.min_metrics),
        ):
            for name in names:
                check(
                    not reads_test_stays(name),
                    key,
                    f"{name!r} is scored on the probe's test stays, which no selection may read; "
                    f"use {VALIDATION_PROBE_METRIC!r} (the same probe on a validation part of the training stays)",
                )
        check(self.penalty > 0, "sweep.penalty", f"must be > 0, got {self.penalty}")
        check(self.heartbeat_seconds >= 1, "sweep.heartbeat_seconds", f"must be >= 1, got {self.heartbeat_seconds}")
        check(self.stale_after_seconds > self.heartbeat_seconds, "sweep.stale_after_seconds", "must exceed sweep.heartbeat_seconds")
        if self.pruner != "none" or self.pruner_options:
            from .pruning import check_pruner  # optuna costs seconds: a run without a pruner does not import it

            check_pruner(self.pruner, dict(self.pruner_options))
        check_finite(self, "sweep")
