"""The data a run trains on, by config: the built-in synthetic set, a Layer-2 file, or PhysioNet 2019.

Each source's Config (the Hydra group ``data``) sits here with the one function that loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from ..errors import VaelabError, check, check_finite
from .layer2 import DEFAULT_VITALS, Layer2Data, read_layer2, vital_columns
from .prepare import VAL_FRACTION
from .streaming import DEFAULT_MEMORY_MB
from .synthetic import generate_synthetic

SEED_LIMIT = 2**32  # numpy's global seed and sklearn's random_state are 32-bit


def check_seed(seed: int, key: str) -> None:
    """A seed setting numpy, torch and sklearn all take."""
    check(0 <= seed < SEED_LIMIT, key, f"must be between 0 and {SEED_LIMIT - 1}, got {seed}")


def _check_vitals(vitals: Optional[list[str]], key: str) -> None:
    if vitals is None:
        return
    check(len(vitals) > 0, key, "must name at least one vital")
    for vital in vitals:
        check(vital in DEFAULT_VITALS, key, f"unknown vital {vital!r}; known vitals are {', '.join(DEFAULT_VITALS)}")
    check(len(set(vitals)) == len(vitals), key, "names a vital twice")


@dataclass
class DataConfig:
    name: str = MISSING
    val_fraction: float = VAL_FRACTION
    vitals: Optional[list[str]] = None  # a subset of the vitals, in this order; None = all

    def __post_init__(self) -> None:
        check(0.0 < self.val_fraction < 1.0, "data.val_fraction", f"must be between 0 and 1, got {self.val_fraction}")
        _check_vitals(self.vitals, "data.vitals")
        check_finite(self, "data")


@dataclass
class SyntheticDataConfig(DataConfig):
    name: str = "synthetic"
    n_patients: int = 600
    seq_len: int = 168
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_patients >= 4, "data.n_patients", f"must be >= 4, got {self.n_patients}")
        check(self.seq_len >= 24, "data.seq_len", f"must be >= 24 hours, got {self.seq_len}")
        check_seed(self.seed, "data.seed")


@dataclass
class H5DataConfig(DataConfig):
    name: str = "h5"
    path: str = MISSING  # a Layer-2 HDF5 file (values, masks, patient_index, vital_index)
    stream: bool = False  # read the file in chunks instead of loading it (files larger than memory)
    memory_mb: int = DEFAULT_MEMORY_MB  # streaming: MiB the stream's patient buffers may hold (model and torch come on top)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.memory_mb >= 1, "data.memory_mb", f"must be >= 1, got {self.memory_mb}")


@dataclass
class PhysioNet2019DataConfig(DataConfig):
    name: str = "physionet2019"
    source: str = MISSING  # a directory of .psv files or the challenge .tar.gz, read as is
    seq_len: int = 48  # the first hours of each stay (aligned on ICULOS); shorter stays are padded with mask 0
    min_hours: int = 0  # drop stays with fewer rows
    cache_dir: Optional[str] = None  # where the imported Layer-2 file is cached (default ~/.cache/vaelab/physionet2019)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.seq_len >= 24, "data.seq_len", f"must be >= 24 hours, got {self.seq_len}")
        check(self.min_hours >= 0, "data.min_hours", f"must be >= 0, got {self.min_hours}")


DATA_SOURCES = {"synthetic": SyntheticDataConfig, "h5": H5DataConfig, "physionet2019": PhysioNet2019DataConfig}


def load_data(cfg: DataConfig, progress: bool = False) -> Layer2Data:
    """The data set a config names, restricted to ``data.vitals`` when given."""
    if isinstance(cfg, SyntheticDataConfig):
        kwargs = {"vitals": tuple(cfg.vitals)} if cfg.vitals else {}
        return generate_synthetic(n_patients=cfg.n_patients, seq_len=cfg.seq_len, seed=cfg.seed, **kwargs)
    if isinstance(cfg, H5DataConfig):
        return select_vitals(read_layer2(cfg.path), cfg.vitals, cfg.path)
    if isinstance(cfg, PhysioNet2019DataConfig):
        # imported here: ``python -m vaelab.data.physionet2019`` must find the module not yet imported
        from .physionet2019 import import_physionet2019

        path = import_physionet2019(cfg.source, seq_len=cfg.seq_len, min_hours=cfg.min_hours, progress=progress, cache_dir=cfg.cache_dir)
        return select_vitals(read_layer2(path), cfg.vitals, str(path))
    raise VaelabError(f"config data.name: unknown data source {getattr(cfg, 'name', cfg)!r}")


def data_source(cfg: DataConfig) -> str:
    """How errors name the data: its file, or the generator."""
    return str(getattr(cfg, "path", None) or getattr(cfg, "source", None) or f"data={cfg.name}")


def select_vitals(data: Layer2Data, vitals: list[str] | None, source: str) -> Layer2Data:
    kept, cols = vital_columns(data.vitals, vitals, source)
    if cols is None:
        return data
    return Layer2Data(data.values[..., cols], data.masks[..., cols], data.patient_ids, kept, data.factors, data.labels)
