"""A Layer-2 file larger than memory, read in chunks of consecutive patients.

HDF5 reads a contiguous run of rows quickly and scattered rows slowly, so an epoch reads the file
chunk by chunk (consecutive patients) in a random order of chunks, and shuffles patients within a
pool of a few chunks: shuffled at chunk level and within the pool, never more than
``max_patients`` patients in memory. The memory budget (``data.memory_mb``) decides the chunk
size; the model, the optimizer and torch itself come on top of it.

Every chunk read is validated with the rules of ``read_layer2`` (the messages name the file, the
dataset and the first bad patient), and the per-vital normalization is fitted in one streaming
pass that matches ``Normalizer.fit`` on the same data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import VaelabError
from .batches import Batch
from .layer2 import (
    PATIENT_GROUPS,
    check_content,
    check_groups,
    check_layout,
    open_layer2,
    read_group,
    read_strings,
    unreadable,
    vital_columns,
)
from .prepare import Normalizer

MIB = 2**20
DEFAULT_MEMORY_MB = 512  # data.memory_mb: the stream's patient buffers
BUFFER_CHUNKS = 4  # chunks the in-pool shuffle mixes
# Bytes each (hour, vital) entry of a patient may take beyond the raw read: float32 values,
# observed flags, the normalized input and its float32 mask, and validation temporaries.
EXTRA_BYTES_PER_ENTRY = 24


class Layer2Stream:
    """A Layer-2 file opened for reading: its layout is checked and its (N,) indexes read; rows only when asked for.

    ``max_patients`` patients fit the memory budget; they are read ``chunk_size`` at a time, and a
    pool of ``max_patients - chunk_size`` (at least ``BUFFER_CHUNKS`` chunks) is shuffled.
    ``peak_resident`` records the most patients held at once (tests check it against the bound).
    """

    def __init__(self, path: str | os.PathLike, memory_mb: float = DEFAULT_MEMORY_MB, vitals: list[str] | None = None):
        self.path = Path(path)
        self.memory_mb = memory_mb
        self._file = open_layer2(self.path)
        try:
            self._open(vitals)
        except OSError as e:
            self.close()
            raise unreadable(self.path, e) from e
        except BaseException:
            self.close()
            raise

    def _open(self, vitals: list[str] | None) -> None:
        """Check the layout, read the (N,) indexes and groups, and size the chunks from the budget."""
        f = self._file
        self._values, self._masks = f["values"], f["masks"]
        self.patient_ids = read_strings(f["patient_index"], self.path)
        self.file_vitals = tuple(read_strings(f["vital_index"], self.path))
        check_layout(self.path, self._values, self._masks, list(self.patient_ids), list(self.file_vitals))
        groups = {name: read_group(f, name, self.path) for name in PATIENT_GROUPS}
        check_groups(self.path, groups, len(self.patient_ids))
        self.factors, self.labels = groups["factors"], groups["labels"]
        self.vitals, self._columns = vital_columns(self.file_vitals, vitals, self.path)

        _, t, v = self._values.shape
        entry_bytes = self._values.dtype.itemsize + self._masks.dtype.itemsize + EXTRA_BYTES_PER_ENTRY
        self.patient_bytes = t * v * entry_bytes
        self.max_patients = int(self.memory_mb * MIB // self.patient_bytes)
        self.chunk_size = self.max_patients // (BUFFER_CHUNKS + 1)
        if self.chunk_size < 1:
            raise VaelabError(
                f"{self.path}: data.memory_mb={self.memory_mb} holds {self.max_patients} patients of {t} h x {v} vitals "
                f"({self.patient_bytes / MIB:.3f} MiB each); streaming needs room for {BUFFER_CHUNKS + 1}; raise data.memory_mb"
            )
        self.pool_size = self.max_patients - self.chunk_size
        self.peak_resident = 0

    @property
    def n_patients(self) -> int:
        return int(self._values.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self._values.shape[1])

    @property
    def n_vitals(self) -> int:
        return len(self.vitals)

    @property
    def max_batch_size(self) -> int:
        """The largest training batch the pool can assemble next to a chunk being read."""
        return self.pool_size - self.chunk_size + 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Layer2Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows start:stop, validated: float32 values in physiological units and the boolean observed
        mask (the selected vitals). Unobserved values are left as stored (use the mask)."""
        try:
            values = self._values[start:stop].astype(np.float32, copy=False)
            masks = self._masks[start:stop]
        except OSError as e:
            raise unreadable(self.path, e) from e
        ids = [str(p) for p in self.patient_ids[start:stop]]
        scope = f" in patients {start}-{stop - 1}" if (start, stop) != (0, self.n_patients) else ""
        observed = check_content(self.path, values, masks, ids, list(self.file_vitals), scope)
        if self._columns is not None:
            values, observed = values[..., self._columns], observed[..., self._columns]
        return values, observed

    def chunks(self, index: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """(start, stop, rows) of each chunk holding patients of ``index``: rows are those patients'
        positions in start:stop, the span from the chunk's first to its last such patient."""
        out = []
        for first in range(0, self.n_patients, self.chunk_size):
            lo, hi = np.searchsorted(index, [first, first + self.chunk_size])
            if hi > lo:
                start, stop = int(index[lo]), int(index[hi - 1]) + 1
                out.append((start, stop, index[lo:hi] - start))
        return out

    def _note_resident(self, n: int) -> None:
        self.peak_resident = max(self.peak_resident, n)

    def fit_normalizer(self, index: np.ndarray) -> Normalizer:
        """``Normalizer.fit`` over the patients of ``index`` in one pass that reads and validates
        the whole file (so a bad patient anywhere fails before training starts)."""
        index = self._check_index(index)
        moments = [_Moments() for _ in self.vitals]
        for start, stop, _ in self.chunks(np.arange(self.n_patients)):
            values, observed = self.read(start, stop)
            self._note_resident(stop - start)
            lo, hi = np.searchsorted(index, [start, stop])
            rows = index[lo:hi] - start
            for k, m in enumerate(moments):
                m.add(values[rows, :, k][observed[rows, :, k]])
        for name, m in zip(self.vitals, moments):
            if m.count == 0:
                raise VaelabError(f"{self.path}: cannot normalize: vital {name!r} is never observed in the training patients")
        mean = np.array([m.mean for m in moments])
        std = np.array([np.sqrt(m.m2 / m.count) if m.high > m.low else 1.0 for m in moments])  # as Normalizer.fit
        return Normalizer(mean, std, self.vitals)

    def patients(self, index: np.ndarray, normalizer: Normalizer) -> StreamedPatients:
        """The patients of ``index`` as a batch source of normalized inputs (what ``train`` reads)."""
        return StreamedPatients(self, self._check_index(index), normalizer)

    def _check_index(self, index) -> np.ndarray:
        index = np.unique(np.asarray(index, dtype=np.int64))
        if len(index) and (index[0] < 0 or index[-1] >= self.n_patients):
            raise VaelabError(f"{self.path}: patient positions must be in 0..{self.n_patients - 1}")
        return index


class StreamedPatients:
    """Some patients of a Layer2Stream as a BatchSource (``data.batches``): normalized (x, mask)
    float32 batches, in file order, or shuffled by chunk and within the pool when given an rng."""

    def __init__(self, stream: Layer2Stream, index: np.ndarray, normalizer: Normalizer):
        self.stream, self.index, self.normalizer = stream, index, normalizer

    def __len__(self) -> int:
        return len(self.index)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        for _, x, mask in self.indexed_batches(batch_size, rng):
            yield Batch(x, mask)

    def indexed_batches(
        self, batch_size: int, rng: np.random.Generator | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(patient positions, x, mask) batches covering every patient once.

        Without an rng the order is the file's and a batch larger than the pool allows is made
        smaller (evaluation); with one, the chunk order and each pool are permuted from it, and a
        batch that does not fit the memory budget is refused.
        """
        s = self.stream
        if batch_size < 1:
            raise VaelabError(f"batch_size must be at least 1, got {batch_size}")
        if batch_size > s.max_batch_size:
            if rng is not None:
                raise VaelabError(
                    f"{s.path}: a batch of {batch_size} patients does not fit data.memory_mb={s.memory_mb} "
                    f"({s.max_patients} patients, read {s.chunk_size} at a time); raise data.memory_mb or lower trainer.batch_size"
                )
            batch_size = s.max_batch_size
        chunks = s.chunks(self.index)
        order = rng.permutation(len(chunks)) if rng is not None else range(len(chunks))
        capacity = min(s.pool_size, len(self.index))
        pool_x = np.empty((capacity, s.seq_len, s.n_vitals), np.float32)
        pool_mask = np.empty_like(pool_x)
        pool_index = np.empty(capacity, np.int64)
        held = 0

        def drain(final: bool):
            """Yield the pool's full batches (all of it when final); keep the rest at its front."""
            nonlocal held
            order_ = rng.permutation(held) if rng is not None else np.arange(held)
            n_out = held if final else held - held % batch_size
            for a in range(0, n_out, batch_size):
                take = order_[a : a + batch_size]
                yield pool_index[take], pool_x[take], pool_mask[take]
            rest = order_[n_out:]
            pool_x[: len(rest)], pool_mask[: len(rest)], pool_index[: len(rest)] = pool_x[rest], pool_mask[rest], pool_index[rest]
            held = len(rest)

        for k in order:
            start, stop, rows = chunks[k]
            if held + len(rows) > capacity:
                yield from drain(final=False)
            s._note_resident(held + stop - start)
            values, observed = s.read(start, stop)
            values, observed = values[rows], observed[rows]
            pool_x[held : held + len(rows)] = self.normalizer.transform(values, observed)
            pool_mask[held : held + len(rows)] = observed
            pool_index[held : held + len(rows)] = start + rows
            held += len(rows)
        yield from drain(final=True)


class _Moments:
    """Count, mean, sum of squared deviations, min and max of one vital's observed values, merged
    chunk by chunk in float64 (Chan, Golub & LeVeque 1979), so they match one pass over all data."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2, self.low, self.high = 0, 0.0, 0.0, np.inf, -np.inf

    def add(self, seen: np.ndarray) -> None:
        if seen.size == 0:
            return
        seen = seen.astype(np.float64)
        n, mean = seen.size, float(seen.mean())
        m2 = float(np.sum((seen - mean) ** 2))
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total
        self.low, self.high = min(self.low, float(seen.min())), max(self.high, float(seen.max()))
