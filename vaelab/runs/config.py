"""The experiment's config: the components' own Config dataclasses, composed and registered for Hydra.

Each setting is defined once, in the Config beside its code (``MultiScaleConfig`` in
models/multiscale.py, ``LossConfig`` in losses.py, ``ScheduleConfig``, ``TrainConfig``,
``EvalConfig``, ``SweepConfig``, the data sources' configs); this module only composes them. Every
group option is registered in Hydra's ConfigStore under its own name (``model=multiscale``), so
the YAML files in conf/ only select options and name experiments.

Hydra rejects a misspelt key or a wrong type while composing; the range checks run in each
Config's ``__post_init__`` when ``validate`` turns the composed config into these dataclasses, at
start-up and before any data is read. Each failure is one VaelabError line naming the config key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..data.sources import DATA_SOURCES, check_seed
from ..errors import VaelabError
from ..evaluation.evaluate import EvalConfig
from ..losses import LossConfig
from ..models import MODELS
from ..schedules import SCHEDULE_KINDS, BetaSchedule, ScheduleConfig
from ..sweeps.config import SweepConfig
from ..tracking import LOGGER_OPTIONS, LoggerConfig
from ..training.trainer import TrainConfig


@dataclass
class ExperimentConfig:
    data: Any = MISSING
    model: Any = MISSING
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    seed: int = 0
    quiet: bool = False  # no progress bar, only the final summary line
    sweep_trial: Optional[int] = None  # set by vaelab's Optuna sweeper: the trial this run is
    logger: Optional[LoggerConfig] = None  # experiment trackers: logger=tensorboard|mlflow|many (vaelab/tracking)

    def __post_init__(self) -> None:
        check_seed(self.seed, "seed")  # each part checked itself, non-finite floats included (errors.check_finite)

    def beta_schedule(self) -> BetaSchedule:
        return BetaSchedule.from_config(self.loss.beta, self.schedule)


def _named(name: str, config_cls: type) -> type:
    """A model's Config with the option's ``name`` added, as the group option stores it (run
    directories and tables read which model a run used from it)."""
    return dataclasses.make_dataclass(config_cls.__name__, [("name", str, field(default=name))], bases=(config_cls,))


MODEL_OPTIONS = {name: _named(name, config_cls) for name, (config_cls, _) in MODELS.items()}
TRAINER_OPTIONS = {"default": TrainConfig(), "debug": TrainConfig(epochs=3, batch_size=16, patience=3)}  # debug: a seconds-long smoke run
GROUP_OPTIONS = {
    "data": DATA_SOURCES,
    "model": MODEL_OPTIONS,
    "loss": {"vae": LossConfig},
    "schedule": {kind: ScheduleConfig(kind=kind) for kind in SCHEDULE_KINDS},
    "trainer": TRAINER_OPTIONS,
}


def register_configs() -> None:
    """Store the top-level schema and every group option; add the ``vaelab_pid`` resolver that
    keeps run directories of simultaneous starts apart."""
    if not OmegaConf.has_resolver("vaelab_pid"):
        # cached, so every job of a sweep (even in launcher subprocesses) resolves the same directory
        OmegaConf.register_resolver("vaelab_pid", lambda: os.getpid(), use_cache=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=ExperimentConfig, replace=True)  # called again by each entry point: same nodes
    for group, options in GROUP_OPTIONS.items():
        for name, node in options.items():
            cs.store(group=group, name=name, node=node, replace=True)
    for name, node in LOGGER_OPTIONS.items():  # each sets only its own tracker's key, so a list of them adds up
        cs.store(group="logger", name=name, node=node, replace=True)


def validate(cfg: DictConfig) -> ExperimentConfig:
    """The composed config as checked dataclasses; any out-of-range value -> one VaelabError line."""
    try:
        experiment = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise VaelabError(f"config: {str(exc).splitlines()[0]}") from None
    if not isinstance(experiment, ExperimentConfig):
        raise VaelabError("config: the primary config must extend base_config")
    return experiment
