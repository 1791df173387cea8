"""VAEBuilder, the plan's façade: Layer-2 file -> trained VAE -> ``vae_latents.h5``.

It composes the same ExperimentConfig that ``python -m vaelab data=h5 data.path=...`` composes and
runs the same pipeline, so both train the same recommended model from the same defaults and write
the same run directory (metrics.json, checkpoint.pt, history.csv, plots/ beside the latents).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from .data.latents import read_latents
from .data.sources import H5DataConfig
from .errors import VaelabError
from .evaluation.evaluate import EvalConfig
from .io import CHECKPOINT_FILE, LATENTS_FILE
from .losses import LossConfig
from .models import MODELS, VAEBase, model_name
from .runs.config import MODEL_OPTIONS, ExperimentConfig
from .runs.pipeline import run
from .schedules import ScheduleConfig
from .training.checkpoint import load_checkpoint
from .training.trainer import TrainConfig

log = logging.getLogger(__name__)

# The plan's arguments that set a model option: applied where the chosen model has that option
# (the plan passes hidden_dim to the conv model and base_channels to the LSTM alike).
PLAN_MODEL_ARGS = ("latent_dim", "hidden_dim", "n_layers", "base_channels", "dropout")


def _fields(config_cls) -> set[str]:
    return {f.name for f in dataclasses.fields(config_cls)}


class VAEBuilder:
    """Train a VAE on a Layer-2 HDF5 file and write the posterior means of every patient.

    The plan's arguments keep their names and order; an argument left at None takes the default
    of the CLI (the one recommended model). Every other model, loss, schedule and trainer option
    of the CLI is a keyword: ``VAEBuilder(path, out, spectral_head=False, branch_weight=1.0,
    schedule_kind="linear", device="cuda")``; a keyword no component has is refused by name.
    """

    def __init__(
        self,
        layer2_tensors_path: Path,
        output_dir: Path,
        latent_dim: int | None = None,
        hidden_dim: int | None = None,
        n_layers: int | None = None,
        beta: float | None = None,
        beta_warmup_epochs: int | None = None,
        free_bits: float | None = None,
        model_type: str = "multiscale_conv1d",
        base_channels: int | None = None,
        cycle_epochs: int | None = None,
        dropout: float | None = None,
        seed: int = 0,
        **options,
    ):
        self.layer2_path = Path(layer2_tensors_path)
        self.output_dir = Path(output_dir)
        self.model_type = model_type
        self.seed = seed
        name = model_name(model_type)  # fail now, not after loading data
        model_fields = _fields(MODELS[name][0])
        plan_args = {
            "latent_dim": latent_dim,
            "hidden_dim": hidden_dim,
            "n_layers": n_layers,
            "base_channels": base_channels,
            "dropout": dropout,
        }
        model_options = {k: v for k, v in plan_args.items() if v is not None and k in model_fields}
        loss_options = {k: v for k, v in {"beta": beta, "free_bits": free_bits}.items() if v is not None}
        schedule_options = {k: v for k, v in {"warmup_epochs": beta_warmup_epochs, "cycle_epochs": cycle_epochs}.items() if v is not None}
        if "schedule_kind" in options:
            schedule_options["kind"] = options.pop("schedule_kind")
        self.train_options = {}
        for key, value in options.items():
            if key in model_fields:
                model_options[key] = value
            elif key in _fields(LossConfig):
                loss_options[key] = value
            elif key in _fields(TrainConfig):
                self.train_options[key] = value
            else:
                raise VaelabError(f"VAEBuilder: {key!r} is no option of model {name!r}, the loss or the trainer")
        self.model_config = MODEL_OPTIONS[name](**model_options)
        self.loss_config = LossConfig(**loss_options)
        self.schedule_config = ScheduleConfig(**schedule_options)
        for key, value in dataclasses.asdict(self.model_config).items():  # the plan's attributes (builder.latent_dim, ...)
            setattr(self, key, value)
        self.beta, self.free_bits = self.loss_config.beta, self.loss_config.free_bits
        self.beta_warmup_epochs, self.cycle_epochs = self.schedule_config.warmup_epochs, self.schedule_config.cycle_epochs

        self.model: VAEBase | None = None
        self.metrics: dict | None = None
        self.latents: dict[str, np.ndarray] | None = None
        self.patient_ids: np.ndarray | None = None

    def experiment(
        self, epochs: int | None = None, batch_size: int | None = None, patience: int | None = None, learning_rate: float | None = None
    ) -> ExperimentConfig:
        """The ExperimentConfig ``build`` runs: what ``python -m vaelab data=h5 data.path=<file>`` composes."""
        trainer = {
            k: v
            for k, v in {"epochs": epochs, "batch_size": batch_size, "patience": patience, "lr": learning_rate}.items()
            if v is not None
        }
        return ExperimentConfig(
            data=H5DataConfig(path=str(self.layer2_path)),
            model=self.model_config,
            loss=self.loss_config,
            schedule=self.schedule_config,
            trainer=TrainConfig(**{**self.train_options, **trainer}),
            eval=EvalConfig(),
            seed=self.seed,
            quiet=True,
        )

    def build(
        self, epochs: int | None = None, batch_size: int | None = None, patience: int | None = None, learning_rate: float | None = None
    ) -> dict[str, np.ndarray]:
        """Train, then return {'mu', 'logvar', 'patient_ids'} for all patients (also in vae_latents.h5).

        Progress goes to the ``vaelab`` loggers: one line per epoch, and the run's summary.
        """
        experiment = self.experiment(epochs, batch_size, patience, learning_rate)
        log.info(
            "VAEBuilder: training %s on %s for up to %d epochs -> %s",
            self.model_type,
            self.layer2_path,
            experiment.trainer.epochs,
            self.output_dir,
        )
        self.metrics = run(experiment, self.output_dir, progress="log")
        if self.metrics["status"] != "ok":
            raise VaelabError(f"{self.output_dir}: {self.metrics.get('error', 'training did not finish')}")
        log.info(
            "VAEBuilder: KL %.2f nats, %d/%d active units, held-out MSE %.4f after %d epochs",
            self.metrics["kl"],
            self.metrics["active_units"],
            self.metrics["latent_dim"],
            self.metrics["recon_mse"],
            self.metrics["epochs_trained"],
        )
        self.model = load_checkpoint(self.output_dir / CHECKPOINT_FILE)[0]
        self.latents = read_latents(self.output_dir / LATENTS_FILE)
        self.patient_ids = self.latents["patient_ids"]
        return self.latents
