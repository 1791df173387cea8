"""The latents file every run and VAEBuilder writes: ``vae_latents.h5`` with mu, logvar, patient_ids."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..io import LATENTS_FILE, atomic_path

__all__ = ["LATENTS_FILE", "read_latents", "write_latents"]


def write_latents(path: str | Path, mu: np.ndarray, logvar: np.ndarray, patient_ids) -> Path:
    """Datasets ``mu`` and ``logvar`` (N, latent_dim) float32 and ``patient_ids`` (N,) UTF-8 bytes."""
    ids = np.array([str(p).encode("utf-8") for p in patient_ids], dtype="S")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("mu", data=np.asarray(mu, dtype=np.float32))
            f.create_dataset("logvar", data=np.asarray(logvar, dtype=np.float32))
            f.create_dataset("patient_ids", data=ids)
    return Path(path)


def read_latents(path: str | Path) -> dict[str, np.ndarray]:
    """{'mu', 'logvar', 'patient_ids' (str)} from a latents file."""
    with h5py.File(path, "r") as f:
        return {
            "mu": f["mu"][:],
            "logvar": f["logvar"][:],
            "patient_ids": np.array([b.decode("utf-8", errors="replace") for b in f["patient_ids"][:]], dtype=object),
        }
