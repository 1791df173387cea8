"""From Layer-2 arrays to model inputs: per-vital normalization, the patient split, the fit checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VaelabError
from ..signal import HeadTargets, head_targets_of_arrays
from .batches import ArrayBatches
from .layer2 import Layer2Data

VAL_FRACTION = 0.2  # patients held out for validation (data.val_fraction)


@dataclass
class Normalizer:
    """Per-vital z-scoring fitted on observed entries only, so missingness never biases the statistics."""

    mean: np.ndarray  # (V,)
    std: np.ndarray  # (V,), never 0
    vitals: tuple[str, ...]

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.asarray(self.std, dtype=np.float64)
        self.vitals = tuple(str(v) for v in self.vitals)
        if not (self.mean.shape == self.std.shape == (len(self.vitals),)):
            raise VaelabError(
                f"normalizer: mean {self.mean.shape} and std {self.std.shape} must both have one entry per vital ({len(self.vitals)})"
            )

    @classmethod
    def fit(cls, values: np.ndarray, masks: np.ndarray, vitals, source: str | None = None) -> Normalizer:
        """Mean and std of each vital over observed entries; a vital with zero spread gets std 1.
        ``source`` (the data's file) starts the message of data that cannot be normalized."""
        vitals = tuple(vitals)
        _check_vitals(values, vitals)
        mean, std = np.empty(len(vitals)), np.empty(len(vitals))
        for k, name in enumerate(vitals):
            seen = values[..., k][masks[..., k] > 0.5].astype(np.float64)
            if seen.size == 0:
                raise data_error(source, f"cannot normalize: vital {name!r} is never observed in the training patients")
            if not np.isfinite(seen).all():
                raise data_error(source, f"cannot normalize: vital {name!r} has NaN or Inf in observed entries")
            mean[k] = seen.mean()
            std[k] = seen.std() if seen.max() > seen.min() else 1.0  # exact test: rounding leaves ~1e-15
        return cls(mean, std, vitals)

    def transform(self, values: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Normalized float32 array with 0.0 (the mean) wherever unobserved, so no NaN reaches a model."""
        _check_vitals(values, self.vitals)
        dtype = np.result_type(values, np.float32)  # float32 data stays float32: no big float64 copies
        mean, std = self.mean.astype(dtype), self.std.astype(dtype)
        filled = np.where(masks > 0.5, values, mean)
        return ((filled - mean) / std).astype(np.float32, copy=False)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Back to physiological units (float32)."""
        return (np.asarray(x) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain lists and strings: storable in JSON and in a weights_only torch checkpoint."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "vitals": list(self.vitals)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        missing = [key for key in ("mean", "std", "vitals") if key not in d]
        if missing:
            raise VaelabError(f"normalizer: stored statistics lack {', '.join(missing)}")
        return cls(d["mean"], d["std"], d["vitals"])


def data_error(source: str | None, problem: str) -> VaelabError:
    """A problem with the data, naming its source (a file, or ``data=synthetic``) when the caller knows it."""
    return VaelabError(f"{source}: {problem}" if source else problem)


def _check_vitals(values: np.ndarray, vitals: tuple[str, ...]) -> None:
    if np.ndim(values) < 1 or np.shape(values)[-1] != len(vitals):
        raise VaelabError(f"normalizer: data has shape {np.shape(values)} but the vitals are {vitals} ({len(vitals)} per hour)")


def split_patients(n_patients: int, val_fraction: float = VAL_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split by patient (never by hour, so no patient leaks into validation): (train, val)."""
    if n_patients < 2:
        raise VaelabError(f"need at least 2 patients to split into training and validation, got {n_patients}")
    if not 0.0 < val_fraction < 1.0:
        raise VaelabError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = min(max(round(n_patients * val_fraction), 1), n_patients - 1)
    order = np.random.default_rng(seed).permutation(n_patients)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


MIN_SEQ_LEN = 24  # hours; below one day the daily and multi-day branches have nothing to see


@dataclass
class PreparedData:
    """Normalized tensors of every patient, the seeded patient split and the statistics used."""

    data: Layer2Data
    normalizer: Normalizer
    x: np.ndarray  # (N, T, V) normalized, 0 where unobserved
    masks: np.ndarray  # (N, T, V) 0/1
    train_idx: np.ndarray
    val_idx: np.ndarray
    targets: HeadTargets | None = None  # the heads' targets of every patient, once computed

    def head_targets(self) -> HeadTargets:
        """The spectral and quantile heads' targets of every patient, computed on first use."""
        if self.targets is None:
            self.targets = head_targets_of_arrays(self.x, self.masks)
        return self.targets

    def patients(self, index: np.ndarray, with_targets: bool = False) -> ArrayBatches:
        """The patients at ``index`` as a batch source (with the heads' targets when asked)."""
        targets = self.head_targets().rows(index) if with_targets else None
        return ArrayBatches(self.x[index], self.masks[index], targets)


def prepare_data(data: Layer2Data, val_fraction: float = VAL_FRACTION, seed: int = 0, source: str | None = None) -> PreparedData:
    """Split patients (seeded), fit per-vital normalization on the training split's observed entries.
    ``source`` (the data's file) starts the message of data a run cannot train on."""
    train_idx, val_idx = training_split(data.n_patients, val_fraction, seed, source)
    normalizer = Normalizer.fit(data.values[train_idx], data.masks[train_idx], data.vitals, source)
    return PreparedData(data, normalizer, normalizer.transform(data.values, data.masks), data.masks, train_idx, val_idx)


def training_split(n_patients: int, val_fraction: float, seed: int, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``split_patients`` for a run: refused, naming ``source``, when fewer than 2 patients would
    train (BatchNorm needs 2)."""
    train_idx, val_idx = split_patients(n_patients, val_fraction, seed) if n_patients >= 2 else (np.arange(n_patients), np.arange(0))
    if len(train_idx) < 2:
        raise data_error(
            source,
            f"{len(train_idx)} of {n_patients} patients left for training; at least 2 are needed (add patients or lower data.val_fraction)",
        )
    return train_idx, val_idx


def check_fit(seq_len: int, source: str) -> None:
    """Refuse data a run cannot learn from, naming the source."""
    if seq_len < MIN_SEQ_LEN:
        raise VaelabError(f"{source}: sequences of {seq_len} h are shorter than the {MIN_SEQ_LEN} h the models need")


def fitted_batch_size(batch_size: int, n_train: int) -> tuple[int, str | None]:
    """(the batch size a run trains with, a note when it differs from the one asked for).

    A pilot cohort smaller than one batch trains with the whole training split as its batch, as a
    DataLoader trains a short last batch; only fewer than 2 training patients cannot train
    (BatchNorm), which ``training_split`` refuses.
    """
    if n_train >= batch_size:
        return batch_size, None
    return n_train, (
        f"trainer.batch_size={batch_size} is more than the {n_train} training patients: each batch is the whole training split"
    )
