"""A run's patients behind one interface, whether held in memory or streamed from a file.

The pipeline and the evaluation read patients only through ``Cohort.patients`` (a BatchSource),
so one run pipeline serves both. Only the figures that need every patient's raw inputs at once
(the PCA baseline, the summary-statistics probe) ask for ``in_memory``, which a streamed cohort lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batches import BatchSource
from .layer2 import Layer2Data
from .prepare import Normalizer, PreparedData
from .streaming import Layer2Stream


@dataclass
class Cohort:
    n_patients: int
    seq_len: int
    vitals: tuple[str, ...]
    patient_ids: np.ndarray
    factors: dict | None
    labels: dict | None
    normalizer: Normalizer
    train_idx: np.ndarray
    val_idx: np.ndarray
    in_memory: PreparedData | None = None
    stream: Layer2Stream | None = None

    @property
    def n_vitals(self) -> int:
        return len(self.vitals)

    @classmethod
    def from_prepared(cls, prepared: PreparedData) -> Cohort:
        d = prepared.data
        return cls(
            d.n_patients,
            d.seq_len,
            d.vitals,
            d.patient_ids,
            d.factors,
            d.labels,
            prepared.normalizer,
            prepared.train_idx,
            prepared.val_idx,
            in_memory=prepared,
        )

    @classmethod
    def from_stream(cls, stream: Layer2Stream, train_idx: np.ndarray, val_idx: np.ndarray, normalizer: Normalizer) -> Cohort:
        return cls(
            stream.n_patients,
            stream.seq_len,
            stream.vitals,
            stream.patient_ids,
            stream.factors,
            stream.labels,
            normalizer,
            train_idx,
            val_idx,
            stream=stream,
        )

    def patients(self, index: np.ndarray | None = None, with_targets: bool = False) -> BatchSource:
        """The patients at ``index`` (default: all) as normalized batches; in memory, with the
        heads' targets precomputed once per patient when ``with_targets``. A stream's batches
        leave the targets to the loss (computed per batch)."""
        index = np.arange(self.n_patients) if index is None else index
        if self.in_memory is not None:
            return self.in_memory.patients(index, with_targets)
        return self.stream.patients(index, self.normalizer)

    def sample(self, rows: np.ndarray) -> Layer2Data:
        """A few patients' raw data (physiological units, NaN where unobserved), e.g. for plots."""
        if self.in_memory is not None:
            return self.in_memory.data.subset(rows)
        parts = [self.stream.read(int(i), int(i) + 1) for i in rows]
        shape = (0, self.seq_len, self.n_vitals)
        values = np.concatenate([p[0] for p in parts]) if parts else np.empty(shape, np.float32)
        observed = np.concatenate([p[1] for p in parts]) if parts else np.zeros(shape, bool)
        return Layer2Data(
            np.where(observed, values, np.nan).astype(np.float32), observed.astype(np.float32), self.patient_ids[rows], self.vitals
        )
