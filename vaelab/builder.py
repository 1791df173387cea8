"""VAEBuilder, the plan's façade: Layer-2 file -> trained VAE -> ``vae_latents.h5``.

The pieces it wires (data preparation, loss construction) are plain functions here so that the
Hydra run layer uses exactly the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.latents import LATENTS_FILE, write_latents
from .data.layer2 import Layer2Data, read_layer2
from .data.tensors import Normalizer, split_patients
from .errors import VaelabError
from .losses import MultiScaleVAELoss, VAELoss
from .models import MODEL_TYPES, build_model
from .models.base import VAEBase
from .schedules import BetaSchedule
from .train import TrainConfig, TrainResult, encode_posterior, seed_everything, train


@dataclass
class PreparedData:
    """Normalized tensors of every patient, the seeded patient split and the statistics used."""

    data: Layer2Data
    normalizer: Normalizer
    x: np.ndarray  # (N, T, V) normalized, 0 where unobserved
    masks: np.ndarray  # (N, T, V) 0/1
    train_idx: np.ndarray
    val_idx: np.ndarray


def prepare_data(data: Layer2Data, val_fraction: float = 0.2, seed: int = 0) -> PreparedData:
    """Split patients (seeded), fit per-vital normalization on the training split's observed entries."""
    train_idx, val_idx = split_patients(data.n_patients, val_fraction, seed)
    if len(train_idx) < 2:
        raise VaelabError(
            f"{data.n_patients} patients leave {len(train_idx)} for training; at least 2 are needed (add patients or lower the validation fraction)"
        )
    normalizer = Normalizer.fit(data.values[train_idx], data.masks[train_idx], data.vitals)
    return PreparedData(data, normalizer, normalizer.transform(data.values, data.masks), data.masks, train_idx, val_idx)


MIN_SEQ_LEN = 24  # hours; below one day the daily and multi-day branches have nothing to see


def check_fit(prepared: PreparedData, batch_size: int, source: str) -> None:
    """Refuse data a run cannot learn from, naming the source and the setting to change."""
    n_train, seq_len = len(prepared.train_idx), prepared.data.seq_len
    if n_train < batch_size:
        raise VaelabError(
            f"{source}: {prepared.data.n_patients} patients leave {n_train} for training, fewer than one batch "
            f"(trainer.batch_size={batch_size}); lower the batch size or add patients"
        )
    if seq_len < MIN_SEQ_LEN:
        raise VaelabError(f"{source}: sequences of {seq_len} h are shorter than the {MIN_SEQ_LEN} h the models need")


def build_loss(
    model_type: str,
    beta: float = 0.5,
    free_bits: float = 2.0,
    warmup_epochs: int = 30,
    cycle_epochs: int = 40,
    schedule_kind: str | None = None,
    free_bits_mode: str = "batch",
    branch_weight: float = 1.0,
    spectral_weight: float = 0.0,
    band_power_weight: float = 0.3,
    quantile_weight: float = 0.3,
) -> VAELoss:
    """The plan's pairing: cyclical MultiScaleVAELoss for the conv models, linear warm-up VAELoss for the LSTM."""
    if model_type in ("multiscale_conv1d", "plan_multiscale"):
        return MultiScaleVAELoss(
            beta, free_bits, warmup_epochs, cycle_epochs, free_bits_mode, branch_weight, schedule_kind or "cyclical", spectral_weight,
            band_power_weight, quantile_weight,
        )
    schedule = BetaSchedule(beta, schedule_kind or "linear", warmup_epochs, cycle_epochs)
    return VAELoss(beta, free_bits, free_bits_mode, branch_weight, schedule=schedule, spectral_weight=spectral_weight,
                   band_power_weight=band_power_weight, quantile_weight=quantile_weight)


class VAEBuilder:
    """Train a VAE on a Layer-2 HDF5 file and write the posterior means of every patient."""

    def __init__(
        self,
        layer2_tensors_path: Path,
        output_dir: Path,
        latent_dim: int = 32,
        hidden_dim: int = 128,
        n_layers: int = 2,
        beta: float = 0.5,
        beta_warmup_epochs: int = 30,
        free_bits: float = 2.0,
        model_type: str = "multiscale_conv1d",
        base_channels: int = 64,
        cycle_epochs: int = 40,
        dropout: float = 0.2,
        seed: int = 0,
    ):
        self.layer2_path = Path(layer2_tensors_path)
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.beta = beta
        self.beta_warmup_epochs = beta_warmup_epochs
        self.free_bits = free_bits
        self.model_type = model_type
        self.base_channels = base_channels
        self.cycle_epochs = cycle_epochs
        self.dropout = dropout
        self.seed = seed
        if model_type not in MODEL_TYPES:  # fail now, not after loading data
            raise VaelabError(f"model_type {model_type!r} is unknown; choose one of {', '.join(MODEL_TYPES)}")

        self.model: VAEBase | None = None
        self.prepared: PreparedData | None = None
        self.result: TrainResult | None = None
        self.latents: dict[str, np.ndarray] | None = None
        self.patient_ids: np.ndarray | None = None

    def build(self, epochs: int = 150, batch_size: int = 64, patience: int = 30, learning_rate: float = 1e-3) -> dict[str, np.ndarray]:
        """Train, then return {'mu', 'logvar', 'patient_ids'} for all patients and write vae_latents.h5."""
        self.prepared = prepared = prepare_data(read_layer2(self.layer2_path), seed=self.seed)
        check_fit(prepared, batch_size, str(self.layer2_path))
        data = prepared.data
        seed_everything(self.seed)
        self.model = build_model(
            self.model_type, data.n_vitals, data.seq_len, self.latent_dim, self.base_channels, self.dropout, self.hidden_dim, self.n_layers
        )
        loss_fn = build_loss(self.model_type, self.beta, self.free_bits, self.beta_warmup_epochs, self.cycle_epochs)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=learning_rate, patience=patience, seed=self.seed, progress=False)
        tr, va = prepared.train_idx, prepared.val_idx
        self.result = train(self.model, loss_fn, prepared.x[tr], prepared.masks[tr], prepared.x[va], prepared.masks[va], config)
        mu, logvar = encode_posterior(self.model, prepared.x, prepared.masks)
        self.patient_ids = data.patient_ids
        self.latents = {"mu": mu, "logvar": logvar, "patient_ids": data.patient_ids}
        write_latents(self.output_dir / LATENTS_FILE, mu, logvar, data.patient_ids)
        return self.latents
