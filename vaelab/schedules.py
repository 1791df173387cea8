"""Beta schedules: the one place that decides the KL weight for an epoch.

The plan kept beta as a side effect of ``get_beta``; here a schedule is a pure function of the
epoch, owned by the loss and read explicitly by the trainer. Its shape is a ``ScheduleConfig``
(the Hydra group ``schedule``); its target beta is the loss's (``loss.beta``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import check, check_finite

SCHEDULE_KINDS = ("constant", "linear", "cyclical")


@dataclass
class ScheduleConfig:
    """The schedule's shape; ``python -m vaelab schedule=linear schedule.warmup_epochs=20``.

    - ``constant``: the target beta from the first epoch.
    - ``linear``: 0 at epoch 0, linear to beta at ``warmup_epochs``, then held.
    - ``cyclical`` (Fu et al. 2019): the linear warm-up restarts every ``cycle_epochs``;
      ramp for ``warmup_epochs``, hold beta for the rest of the cycle.
    """

    kind: str = "cyclical"
    warmup_epochs: int = 30
    cycle_epochs: int = 40

    def __post_init__(self) -> None:
        check(self.kind in SCHEDULE_KINDS, "schedule.kind", f"must be one of {', '.join(SCHEDULE_KINDS)}, got {self.kind!r}")
        check(self.warmup_epochs >= 0, "schedule.warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        check(self.cycle_epochs >= 1, "schedule.cycle_epochs", f"must be >= 1, got {self.cycle_epochs}")
        if self.kind == "cyclical":
            check(
                self.cycle_epochs >= self.warmup_epochs,
                "schedule.cycle_epochs",
                f"({self.cycle_epochs}) is shorter than schedule.warmup_epochs ({self.warmup_epochs}): the ramp would never reach beta",
            )
        check_finite(self, "schedule")


@dataclass(frozen=True)
class BetaSchedule:
    """KL weight per epoch: ``beta`` shaped by a schedule of ``kind`` (see ScheduleConfig)."""

    beta: float
    kind: str = ScheduleConfig.kind
    warmup_epochs: int = ScheduleConfig.warmup_epochs
    cycle_epochs: int = ScheduleConfig.cycle_epochs

    def __post_init__(self) -> None:
        check(self.beta >= 0, "loss.beta", f"must be >= 0, got {self.beta}")
        ScheduleConfig(self.kind, self.warmup_epochs, self.cycle_epochs)  # the shape's checks

    @classmethod
    def from_config(cls, beta: float, config: ScheduleConfig) -> BetaSchedule:
        return cls(beta, config.kind, config.warmup_epochs, config.cycle_epochs)

    def __call__(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.kind == "constant" or self.warmup_epochs == 0:
            return float(self.beta)
        position = epoch % self.cycle_epochs if self.kind == "cyclical" else epoch
        return float(self.beta * min(1.0, position / self.warmup_epochs))
