"""Beta schedules: the one place that decides the KL weight for an epoch.

The plan kept beta as a side effect of ``get_beta``; here a schedule is a pure function of the
epoch, owned by the loss and read explicitly by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import VaelabError

SCHEDULE_KINDS = ("constant", "linear", "cyclical")


@dataclass(frozen=True)
class BetaSchedule:
    """KL weight per epoch.

    - ``constant``: ``beta`` from the first epoch.
    - ``linear``: 0 at epoch 0, linear to ``beta`` at ``warmup_epochs``, then held.
    - ``cyclical`` (Fu et al. 2019): the linear warm-up restarts every ``cycle_epochs``;
      ramp for ``warmup_epochs``, hold ``beta`` for the rest of the cycle.
    """

    beta: float = 0.5
    kind: str = "cyclical"
    warmup_epochs: int = 30
    cycle_epochs: int = 40

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise VaelabError(f"schedule kind {self.kind!r} is unknown; choose one of {', '.join(SCHEDULE_KINDS)}")
        if not self.beta >= 0:
            raise VaelabError(f"beta must be >= 0, got {self.beta}")
        if self.warmup_epochs < 0:
            raise VaelabError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.kind == "cyclical":
            if self.cycle_epochs < 1:
                raise VaelabError(f"cycle_epochs must be >= 1, got {self.cycle_epochs}")
            if self.cycle_epochs < self.warmup_epochs:
                raise VaelabError(
                    f"cycle_epochs ({self.cycle_epochs}) is shorter than warmup_epochs ({self.warmup_epochs}): "
                    "the ramp would never reach beta"
                )

    def __call__(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.kind == "constant" or self.warmup_epochs == 0:
            return float(self.beta)
        position = epoch % self.cycle_epochs if self.kind == "cyclical" else epoch
        return float(self.beta * min(1.0, position / self.warmup_epochs))
