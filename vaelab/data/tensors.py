"""From Layer-2 arrays to model inputs: per-vital normalization, the patient split, mini-batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import VaelabError


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
                f"normalizer: mean {self.mean.shape} and std {self.std.shape} must both have one entry per vital "
                f"({len(self.vitals)})"
            )

    @classmethod
    def fit(cls, values: np.ndarray, masks: np.ndarray, vitals) -> Normalizer:
        """Mean and std of each vital over observed entries; a vital with zero spread gets std 1."""
        vitals = tuple(vitals)
        _check_vitals(values, vitals)
        mean, std = np.empty(len(vitals)), np.empty(len(vitals))
        for k, name in enumerate(vitals):
            seen = values[..., k][masks[..., k] > 0.5].astype(np.float64)
            if seen.size == 0:
                raise VaelabError(f"cannot normalize: vital {name!r} is never observed")
            if not np.isfinite(seen).all():
                raise VaelabError(f"cannot normalize: vital {name!r} has NaN or Inf in observed entries")
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


def _check_vitals(values: np.ndarray, vitals: tuple[str, ...]) -> None:
    if np.ndim(values) < 1 or np.shape(values)[-1] != len(vitals):
        raise VaelabError(
            f"normalizer: data has shape {np.shape(values)} but the vitals are {vitals} ({len(vitals)} per hour)"
        )


def split_patients(n_patients: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split by patient (never by hour, so no patient leaks into validation): (train, val)."""
    if n_patients < 2:
        raise VaelabError(f"need at least 2 patients to split into training and validation, got {n_patients}")
    if not 0.0 < val_fraction < 1.0:
        raise VaelabError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = min(max(round(n_patients * val_fraction), 1), n_patients - 1)
    order = np.random.default_rng(seed).permutation(n_patients)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def batch_indices(
    n: int, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Index arrays covering 0..n-1 once each; the last batch may be smaller.

    With shuffle and no rng a fresh unseeded generator is used; pass one for reproducible epochs.
    """
    if batch_size < 1:
        raise VaelabError(f"batch_size must be at least 1, got {batch_size}")
    order = (rng or np.random.default_rng()).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class BatchSource(Protocol):
    """What the trainer reads: patients yielded as (x, mask) float32 mini-batches (B, T, V).

    ``batches`` covers every patient once; with ``rng`` in a shuffled order drawn from it (so an
    epoch is reproducible and resumable from the generator's state), without in a fixed order.
    """

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class ArrayBatches:
    """Normalized arrays in memory as a BatchSource (a Layer2Stream's batches are the other kind)."""

    def __init__(self, x: np.ndarray, mask: np.ndarray):
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.mask = np.ascontiguousarray(mask, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for index in batch_indices(len(self.x), batch_size, shuffle=rng is not None, rng=rng):
            yield self.x[index], self.mask[index]


def as_batch_source(x, mask: np.ndarray | None = None) -> BatchSource:
    """Arrays (x, mask) as an ArrayBatches; a BatchSource given as ``x`` with no mask, as is."""
    if mask is None:
        if not hasattr(x, "batches"):
            raise TypeError(f"expected arrays (x, mask) or a batch source, got {type(x).__name__} and no mask")
        return x
    return ArrayBatches(x, mask)
