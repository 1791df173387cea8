"""vaelab's pruning rule: a latent that has collapsed by the end of the warm-up does not recover."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check, check_finite


@dataclass
class CollapseRule:
    """A trial has collapsed when, after ``warmup_epochs``, for ``patience`` epochs in a row its
    validation active units are below ``min_active_units`` or its true KL (nats, summed over the
    latent) is below ``min_kl``."""

    warmup_epochs: int = 30  # the default schedule's beta ramp: KL starts low in healthy runs too
    patience: int = 5
    min_active_units: int = 1
    min_kl: float = 0.5

    def __post_init__(self) -> None:
        check(self.warmup_epochs >= 0, "sweep.collapse.warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        check(self.patience >= 1, "sweep.collapse.patience", f"must be >= 1, got {self.patience}")
        check(self.min_active_units >= 0, "sweep.collapse.min_active_units", f"must be >= 0, got {self.min_active_units}")
        check(math.isfinite(self.min_kl) and self.min_kl >= 0, "sweep.collapse.min_kl", f"must be a number >= 0, got {self.min_kl}")
        check_finite(self, "sweep.collapse")

    def collapsed(self, row: dict) -> bool:
        return row["active_units"] < self.min_active_units or row["val_kl"] < self.min_kl

    def verdict(self, history: list[dict]) -> str | None:
        """Why the run has collapsed, or None while it has not (or is still warming up)."""
        judged = [row for row in history if row["epoch"] >= self.warmup_epochs]
        recent = judged[-self.patience :]
        if len(recent) < self.patience or not all(self.collapsed(row) for row in recent):
            return None
        last = recent[-1]
        held = [f"active units {last['active_units']} < {self.min_active_units}"] if last["active_units"] < self.min_active_units else []
        held += [f"true KL {last['val_kl']:.3f} < {self.min_kl} nats"] if last["val_kl"] < self.min_kl else []
        return f"collapsed for {self.patience} epochs after the {self.warmup_epochs}-epoch warm-up ({', '.join(held)})"
