"""Schemas of every config group, registered in Hydra's ConfigStore.

Hydra rejects a misspelt key or a wrong type while composing; the range checks below run in
``__post_init__`` when ``validate`` turns the composed config into these dataclasses, at start-up
and before any data is read. Each failure is one VaelabError line naming the config key.

The YAML files under ``conf/<group>/<name>.yaml`` extend the schema stored here as
``<group>/base_<name>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data.layer2 import DEFAULT_VITALS
from .errors import VaelabError
from .losses import FREE_BITS_MODES
from .models.multiscale import BRANCHES, POOLINGS
from .schedules import SCHEDULE_KINDS, BetaSchedule


def _check(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise VaelabError(f"config {key}: {problem}")


def _check_vitals(vitals: Optional[list[str]], key: str) -> None:
    if vitals is None:
        return
    _check(len(vitals) > 0, key, "must name at least one vital")
    for vital in vitals:
        _check(vital in DEFAULT_VITALS, key, f"unknown vital {vital!r}; known vitals are {', '.join(DEFAULT_VITALS)}")
    _check(len(set(vitals)) == len(vitals), key, "names a vital twice")


@dataclass
class DataConfig:
    name: str = MISSING
    val_fraction: float = 0.2
    vitals: Optional[list[str]] = None  # a subset of the vitals, in this order; None = all

    def __post_init__(self) -> None:
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", f"must be between 0 and 1, got {self.val_fraction}")
        _check_vitals(self.vitals, "data.vitals")


@dataclass
class SyntheticDataConfig(DataConfig):
    name: str = "synthetic"
    n_patients: int = 600
    seq_len: int = 168
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.n_patients >= 4, "data.n_patients", f"must be >= 4, got {self.n_patients}")
        _check(self.seq_len >= 24, "data.seq_len", f"must be >= 24 hours, got {self.seq_len}")


@dataclass
class H5DataConfig(DataConfig):
    name: str = "h5"
    path: str = MISSING  # a Layer-2 HDF5 file (values, masks, patient_index, vital_index)
    stream: bool = False  # read the file in chunks instead of loading it (files larger than memory)
    memory_mb: int = 512  # streaming: MiB the stream's patient buffers may hold (model and torch come on top)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.memory_mb >= 1, "data.memory_mb", f"must be >= 1, got {self.memory_mb}")


@dataclass
class PhysioNet2019DataConfig(DataConfig):
    name: str = "physionet2019"
    source: str = MISSING  # a directory of .psv files or the challenge .tar.gz, read as is
    seq_len: int = 48  # the first hours of each stay (aligned on ICULOS); shorter stays are padded with mask 0
    min_hours: int = 0  # drop stays with fewer rows
    cache_dir: Optional[str] = None  # where the imported Layer-2 file is cached (default ~/.cache/vaelab/physionet2019)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.seq_len >= 24, "data.seq_len", f"must be >= 24 hours, got {self.seq_len}")
        _check(self.min_hours >= 0, "data.min_hours", f"must be >= 0, got {self.min_hours}")


@dataclass
class ModelConfig:
    name: str = MISSING
    latent_dim: int = 32

    def __post_init__(self) -> None:
        _check(self.latent_dim >= 1, "model.latent_dim", f"must be >= 1, got {self.latent_dim}")


@dataclass
class ConvModelConfig(ModelConfig):
    """What both multi-scale conv models take."""

    base_channels: int = 64
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.base_channels >= 4, "model.base_channels", f"must be >= 4, got {self.base_channels}")
        _check(0.0 <= self.dropout < 1.0, "model.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class MultiscaleModelConfig(ConvModelConfig):
    name: str = "multiscale"
    latent_groups: bool = False  # one latent group per branch; each decoder branch decodes its own group
    pooling: str = "moments"  # moments (mean, trend, 24 h cos/sin) | moments_std (+ spread over time)
    spectral_head: bool = True  # predict each vital's log band power from the posterior mean (loss.band_power_weight)
    quantile_head: bool = True  # predict each vital's quantiles over the observed hours from the posterior mean (loss.quantile_weight)
    posterior_bn: float = 0.6  # BN-VAE: batch-normalize posterior means to this fixed scale (0 = off)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.pooling in POOLINGS, "model.pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        _check(self.posterior_bn >= 0.0, "model.posterior_bn", f"must be >= 0 (0 = off), got {self.posterior_bn}")
        _check(not self.latent_groups or self.latent_dim >= len(BRANCHES), "model.latent_groups",
               f"needs latent_dim >= {len(BRANCHES)} (one dimension per branch), got {self.latent_dim}; "
               "set model.latent_groups=false for a smaller latent")


@dataclass
class PlanModelConfig(ConvModelConfig):
    """The plan's original multi-scale model, defects included: a baseline to compare against."""

    name: str = "plan"


@dataclass
class LSTMModelConfig(ModelConfig):
    name: str = "lstm"
    hidden_dim: int = 128
    n_layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.hidden_dim >= 1, "model.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        _check(self.n_layers >= 1, "model.n_layers", f"must be >= 1, got {self.n_layers}")


@dataclass
class LossConfig:
    beta: float = 0.5
    free_bits: float = 2.0
    free_bits_mode: str = "batch"  # batch (Kingma et al. 2016) | sample (the plan's)
    branch_weight: float = 0.4  # each decoder branch's MSE relative to the merged output's; 0 = off (the plan: 1)
    spectral_weight: float = 0.0  # weight of the log band-power distance (losses.spectral_log_distance); 0 = off
    band_power_weight: float = 0.3  # weight of the spectral head's error (model.spectral_head=true only)
    quantile_weight: float = 1.5  # weight of the quantile head's error (model.quantile_head=true only)

    def __post_init__(self) -> None:
        _check(self.beta >= 0, "loss.beta", f"must be >= 0, got {self.beta}")
        _check(self.free_bits >= 0, "loss.free_bits", f"must be >= 0, got {self.free_bits}")
        _check(self.free_bits_mode in FREE_BITS_MODES, "loss.free_bits_mode", f"must be one of {', '.join(FREE_BITS_MODES)}, got {self.free_bits_mode!r}")
        _check(self.branch_weight >= 0, "loss.branch_weight", f"must be >= 0, got {self.branch_weight}")
        _check(self.spectral_weight >= 0, "loss.spectral_weight", f"must be >= 0, got {self.spectral_weight}")
        _check(self.band_power_weight >= 0, "loss.band_power_weight", f"must be >= 0, got {self.band_power_weight}")
        _check(self.quantile_weight >= 0, "loss.quantile_weight", f"must be >= 0, got {self.quantile_weight}")


@dataclass
class ScheduleConfig:
    kind: str = "cyclical"
    warmup_epochs: int = 30
    cycle_epochs: int = 40

    def __post_init__(self) -> None:
        _check(self.kind in SCHEDULE_KINDS, "schedule.kind", f"must be one of {', '.join(SCHEDULE_KINDS)}, got {self.kind!r}")
        _check(self.warmup_epochs >= 0, "schedule.warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        _check(self.cycle_epochs >= 1, "schedule.cycle_epochs", f"must be >= 1, got {self.cycle_epochs}")
        if self.kind == "cyclical":
            _check(
                self.cycle_epochs >= self.warmup_epochs,
                "schedule.cycle_epochs",
                f"({self.cycle_epochs}) is shorter than schedule.warmup_epochs ({self.warmup_epochs})",
            )


@dataclass
class TrainerConfig:
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 30
    threads: Optional[int] = None  # torch intra-op threads; null = torch's default (all cores)
    resume: bool = True  # continue from <run dir>/train_state.pt when it exists (same config)
    device: str = "cpu"  # cpu | cuda | cuda:N (refused with one line when CUDA is unavailable)

    def __post_init__(self) -> None:
        from .train import TrainConfig  # the trainer's own checks (ranges, CUDA availability)

        TrainConfig(self.epochs, self.batch_size, self.lr, self.patience, threads=self.threads, device=self.device)


@dataclass
class EvalConfig:
    """Settings of the metrics computed after training (NOTES.md §3)."""

    mi_batch_size: int = 256  # MI is bounded by log(batch): fixed and reported
    probe_seed: int = 0
    pca_components: int = 8  # the PCA baseline of the factor probe
    probe_label: str = "sepsis"  # the binary label (data's labels/ group) of the downstream probe
    probe_test_fraction: float = 0.3
    n_plot_patients: int = 3
    plots: bool = True  # per-run PNGs under plots/; sweeps turn them off (the sweep report plots the sweep)

    def __post_init__(self) -> None:
        _check(self.mi_batch_size >= 2, "eval.mi_batch_size", f"must be >= 2, got {self.mi_batch_size}")
        _check(self.pca_components >= 1, "eval.pca_components", f"must be >= 1, got {self.pca_components}")


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

    objectives: list[str] = field(default_factory=lambda: ["kl", "latent_spread", "recon_mse"])
    directions: list[str] = field(default_factory=lambda: ["maximize", "maximize", "minimize"])
    max_metrics: dict[str, float] = field(default_factory=lambda: {"kl_per_latent_dim": 5.0})
    min_metrics: dict[str, float] = field(default_factory=dict)
    penalty: float = 1.0e6
    heartbeat_seconds: int = 10  # a running trial's sweep process proves it is alive this often
    stale_after_seconds: int = 60  # a running trial silent this long belongs to a killed process: FAIL
    report: bool = True  # write the sweep report (table + plots) when the sweep ends

    def __post_init__(self) -> None:
        _check(len(self.objectives) >= 1, "sweep.objectives", "name at least one metric")
        _check(len(self.objectives) == len(self.directions), "sweep.directions", f"needs one direction per objective ({len(self.objectives)})")
        for d in self.directions:
            _check(d in ("maximize", "minimize"), "sweep.directions", f"must be maximize or minimize, got {d!r}")
        _check(self.penalty > 0, "sweep.penalty", f"must be > 0, got {self.penalty}")
        _check(self.heartbeat_seconds >= 1, "sweep.heartbeat_seconds", f"must be >= 1, got {self.heartbeat_seconds}")
        _check(self.stale_after_seconds > self.heartbeat_seconds, "sweep.stale_after_seconds", "must exceed sweep.heartbeat_seconds")


@dataclass
class ExperimentConfig:
    data: Any = MISSING
    model: Any = MISSING
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    seed: int = 0
    quiet: bool = False  # no progress bar, only the final summary line
    sweep_trial: Optional[int] = None  # set by vaelab's Optuna sweeper: the trial this run is

    def beta_schedule(self) -> BetaSchedule:
        return BetaSchedule(self.loss.beta, self.schedule.kind, self.schedule.warmup_epochs, self.schedule.cycle_epochs)


GROUP_SCHEMAS = {
    "data": {"synthetic": SyntheticDataConfig, "h5": H5DataConfig, "physionet2019": PhysioNet2019DataConfig},
    "model": {"multiscale": MultiscaleModelConfig, "lstm": LSTMModelConfig, "plan": PlanModelConfig},
    "loss": {"vae": LossConfig},
    "schedule": {"cyclical": ScheduleConfig, "linear": ScheduleConfig, "constant": ScheduleConfig},
    "trainer": {"default": TrainerConfig},
}
MODEL_TYPES = {"multiscale": "multiscale_conv1d", "lstm": "lstm", "plan": "plan_multiscale"}


def register_configs() -> None:
    """Store the top-level schema and each group's schema as ``<group>/base_<name>``; add the
    ``vaelab_pid`` resolver that keeps run directories of simultaneous starts apart."""
    if not OmegaConf.has_resolver("vaelab_pid"):
        # cached, so every job of a sweep (even in launcher subprocesses) resolves the same directory
        OmegaConf.register_new_resolver("vaelab_pid", lambda: os.getpid(), use_cache=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=ExperimentConfig)
    for group, schemas in GROUP_SCHEMAS.items():
        for name, schema in schemas.items():
            cs.store(group=group, name=f"base_{name}", node=schema)


def validate(cfg: DictConfig) -> ExperimentConfig:
    """The composed config as checked dataclasses; any out-of-range value -> one VaelabError line."""
    try:
        experiment = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise VaelabError(f"config: {str(exc).splitlines()[0]}") from None
    if not isinstance(experiment, ExperimentConfig):
        raise VaelabError("config: the primary config must extend base_config")
    return experiment
