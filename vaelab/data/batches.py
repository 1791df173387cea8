"""Mini-batches: the one interface the trainer, inference and evaluation read patients through.

Two implementations: ``ArrayBatches`` (normalized arrays in memory) and the streamed Layer-2 file
(``data.streaming.StreamedPatients``), so one pipeline serves both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ..errors import VaelabError
from ..signal import HeadTargets


class Batch(tuple):
    """An ``(x, mask)`` mini-batch of float32 arrays (B, T, V); ``targets`` carries the heads'
    targets of its patients when the source has them precomputed (else None)."""

    targets: HeadTargets | None

    def __new__(cls, x: np.ndarray, mask: np.ndarray, targets: HeadTargets | None = None) -> Batch:
        batch = super().__new__(cls, (x, mask))
        batch.targets = targets
        return batch


def batch_indices(n: int, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays covering 0..n-1 once each; the last batch may be smaller.

    With shuffle and no rng a fresh unseeded generator is used; pass one for reproducible epochs.
    """
    if batch_size < 1:
        raise VaelabError(f"batch_size must be at least 1, got {batch_size}")
    order = (rng or np.random.default_rng()).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class BatchSource(Protocol):
    """What the trainer reads: patients yielded as ``Batch`` (x, mask) float32 mini-batches (B, T, V).

    ``batches`` covers every patient once; with ``rng`` in a shuffled order drawn from it (so an
    epoch is reproducible and resumable from the generator's state), without in a fixed order.
    """

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]: ...


class ArrayBatches:
    """Normalized arrays in memory as a BatchSource (a Layer2Stream's batches are the other kind),
    with the heads' targets of every patient when given."""

    def __init__(self, x: np.ndarray, mask: np.ndarray, targets: HeadTargets | None = None):
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.mask = np.ascontiguousarray(mask, dtype=np.float32)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        for index in batch_indices(len(self.x), batch_size, shuffle=rng is not None, rng=rng):
            yield Batch(self.x[index], self.mask[index], None if self.targets is None else self.targets.rows(index))


def as_batch_source(x, mask: np.ndarray | None = None) -> BatchSource:
    """Arrays (x, mask) as an ArrayBatches; a BatchSource given as ``x`` with no mask, as is."""
    if mask is None:
        if not hasattr(x, "batches"):
            raise TypeError(f"expected arrays (x, mask) or a batch source, got {type(x).__name__} and no mask")
        return x
    return ArrayBatches(x, mask)
